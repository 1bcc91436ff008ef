// The original node's /media mount, configured exactly as seed 000 describes
// (express 4.21.1 as in its lockfile): etag, lastModified, maxAge '1y', immutable,
// and the setHeaders rule for gif/jpg/png/svg. Run as the original ran it:
// `node server.js` (no --expose-gc, so its forced-GC band-aids would be inert).
const express = require('express');
const path = require('path');

const root = process.env.MEDIA_ROOT;
const port = Number(process.env.PORT || 3006);
const app = express();

const mediaStaticOptions = {
  etag: true,
  lastModified: true,
  maxAge: '1y',
  immutable: true,
  setHeaders: (res, filePath) => {
    if (filePath.endsWith('.gif') || filePath.endsWith('.jpg') ||
        filePath.endsWith('.png') || filePath.endsWith('.svg')) {
      res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    }
  },
};

app.use('/media', express.static(path.resolve(root), mediaStaticOptions));
app.get('/api/health', (req, res) => res.json({ status: 'OK' }));
app.listen(port, '127.0.0.1', () => console.log(`express peer on ${port}, serving ${root}`));
