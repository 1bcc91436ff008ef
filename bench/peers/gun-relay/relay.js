#!/usr/bin/env node
// A GUN relay peer for tests and benchmarks: the real `gun` package (pinned by
// scripts/test.sh into target/gun-peer) behind a small HTTP server that speaks the
// original node's relay protocol (gun-relay-server.js): POST /put {soul, data},
// GET /get?soul=, GET /list?publisherHash=&limit=&offset=&recordType=, with its
// JSON shapes ({success:true, soul}, {success:true, data}, {error}), GUN's own
// keys stripped, data/oip JSON strings parsed, nested nodes answered as GUN
// references ({"#": soul}) exactly as GUN gives them.
//
// One difference from the original relay, so deletions can be tested end to end:
// a put of data:null (which GUN refuses at the root: "Data at root of graph must be
// a node") nulls every field of the node instead, after which /get answers 404.
//
//   node relay.js --port P --dir D [--fault MODE] [--flood N] [--big-mb M] [--fail-percent P]
//
// --fail-percent P: that share of record souls (by a hash of the soul) answer 500,
// always (the benchmark's failing records).
//
// --fault makes record answers (souls "<12 hex>:<id>") misbehave, for the fault
// tests: 500 (every record answers 500), hang (no /get is ever answered),
// big (records are --big-mb MB, default 50), malformed (records are broken
// JSON), flood (oip:registry:index:post lists --flood N souls, default 20000, and
// every one of them is 404); original-delete answers a put of data:null as the
// original relay did (500 "Data at root of graph must be a node") and behaves
// normally otherwise. Registry and deletion indexes answer normally.
'use strict';
const http = require('http');
const url = require('url');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = parseInt(opt('port', '8765'), 10);
const dir = opt('dir', 'gun-data');
const fault = opt('fault', '');
const floodN = parseInt(opt('flood', '20000'), 10);
const bigMb = parseInt(opt('big-mb', '50'), 10);
const failPercent = parseInt(opt('fail-percent', '0'), 10);
const hash = (s) => parseInt(require('crypto').createHash('md5').update(s).digest('hex').slice(0, 8), 16);

const Gun = require('gun');
const GUN_KEYS = ['_', '#', '>', '<'];
const RECORD_SOUL = /^[0-9a-f]{12}:/;

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const publisherIndex = new Map();

const server = http.createServer(async (req, res) => {
  const u = url.parse(req.url, true);
  try {
    if (req.method === 'POST' && u.pathname === '/put') {
      let parsed;
      try {
        parsed = JSON.parse(await readBody(req));
      } catch (e) {
        return send(res, 400, { error: 'Invalid JSON' });
      }
      const { soul, data } = parsed;
      if (!soul) return send(res, 400, { error: 'soul required' });
      if (data === null && fault === 'original-delete') {
        // the original relay: GUN refuses null at the root, and the relay answers 500
        return send(res, 500, { error: 'Data at root of graph must be a node (an object).' });
      }
      if (data === null) {
        // delete: null every field (GUN refuses null at the root)
        gun.get(soul).once((node) => {
          const nulls = {};
          for (const k of Object.keys(node || {})) if (!GUN_KEYS.includes(k)) nulls[k] = null;
          if (Object.keys(nulls).length === 0) return send(res, 200, { success: true, soul });
          gun.get(soul).put(nulls, (ack) => (ack.err ? send(res, 500, { error: ack.err }) : send(res, 200, { success: true, soul })));
        });
        return;
      }
      gun.get(soul).put(data, (ack) => {
        if (ack.err) return send(res, 500, { error: ack.err });
        const prefix = String(soul).split(':')[0];
        let recordType = null;
        try {
          recordType = (typeof data.oip === 'string' ? JSON.parse(data.oip) : data.oip || {}).recordType || null;
        } catch (e) {}
        const list = publisherIndex.get(prefix) || [];
        const i = list.findIndex((r) => r.soul === soul);
        const rec = { soul, data, recordType, storedAt: Date.now() };
        if (i >= 0) list[i] = rec; else list.push(rec);
        publisherIndex.set(prefix, list);
        send(res, 200, { success: true, soul });
      });
      return;
    }
    if (req.method === 'GET' && u.pathname === '/get') {
      const soul = u.query.soul;
      if (!soul) return send(res, 400, { error: 'Soul parameter required' });
      if (fault && fault !== 'original-delete' && RECORD_SOUL.test(soul)) {
        if (fault === '500') return send(res, 500, { error: 'relay failure' });
        if (fault === 'hang') return; // never answered
        if (fault === 'malformed') return send(res, 200, '{"success":true,"data":{"oip":"{\\"recordType\\":');
        if (fault === 'flood') return send(res, 404, { error: 'Not found' });
        if (fault === 'big') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.write('{"success":true,"data":{"data":"');
          const chunk = 'x'.repeat(1024 * 1024);
          for (let i = 0; i < bigMb; i++) res.write(chunk);
          return res.end('","oip":"{}"}}');
        }
      }
      if (failPercent > 0 && RECORD_SOUL.test(soul) && hash(soul) % 100 < failPercent) return send(res, 500, { error: 'relay failure' });
      if (fault === 'hang') return;
      if (fault === 'flood' && soul === 'oip:registry:index:post') {
        const data = {};
        for (let i = 0; i < floodN; i++) {
          const s = 'f10d0000beef:' + i;
          data[s] = { soul: s, nodeId: 'flood' };
        }
        return send(res, 200, { success: true, data });
      }
      if (fault && fault !== 'flood' && fault !== 'original-delete' && soul === 'oip:registry:index:post') {
        const data = {};
        for (let i = 0; i < 50; i++) {
          const s = 'fa0170000000:' + i;
          data[s] = { soul: s, nodeId: 'faulty' };
        }
        return send(res, 200, { success: true, data });
      }
      let answered = false;
      gun.get(soul).once((node) => {
        if (answered) return;
        answered = true;
        const out = {};
        for (const k of Object.keys(node || {})) {
          if (GUN_KEYS.includes(k)) continue;
          const v = node[k];
          if (v === null || v === undefined) continue;
          if ((k === 'data' || k === 'oip') && typeof v === 'string') {
            try { out[k] = JSON.parse(v); } catch (e) { out[k] = v; }
          } else {
            out[k] = v;
          }
        }
        if (Object.keys(out).length > 0) send(res, 200, { success: true, data: out });
        else send(res, 404, { error: 'Not found' });
      }, { wait: 20 });
      setTimeout(() => {
        if (!answered) {
          answered = true;
          send(res, 404, { error: 'Not found' });
        }
      }, 3000);
      return;
    }
    if (req.method === 'GET' && u.pathname === '/list') {
      const hash = u.query.publisherHash;
      if (!hash) return send(res, 400, { error: 'publisherHash parameter required' });
      const limit = Math.max(0, parseInt(u.query.limit || '50', 10) || 50);
      const offset = Math.max(0, parseInt(u.query.offset || '0', 10) || 0);
      let recs = publisherIndex.get(hash) || [];
      if (u.query.recordType) recs = recs.filter((r) => r.recordType === u.query.recordType);
      return send(res, 200, { success: true, records: recs.slice(offset, offset + limit) });
    }
    if (req.method === 'GET' && u.pathname === '/health') return send(res, 200, { ok: true });
    send(res, 404, { error: 'Endpoint not found' });
  } catch (e) {
    send(res, 500, { error: e.message });
  }
});

const gun = Gun({ web: server, file: dir, radisk: true, localStorage: false, multicast: false, axe: false, peers: [] });
server.listen(port, '127.0.0.1', () => console.log('gun relay peer on ' + port));
process.on('SIGTERM', () => process.exit(0));
