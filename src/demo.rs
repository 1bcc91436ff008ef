//! Demo content: real animated GIFs like the FitnessAlly exercise loops the
//! original served (360×360, 0.5–2 MB), generated deterministically so a new user
//! sees something at once and benchmarks have a reproducible corpus.
//!
//! Each GIF is an animated figure (a bouncing head and a swinging bar) over a
//! dithered background; the dithering is what makes frames as large as real
//! camera-shot exercise GIFs. Files are written to a temp name and renamed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Edge of the square demo GIFs, like the seeds' `_360.gif` files.
pub const GIF_EDGE: u16 = 360;

/// The demo set: names in the seeds' style, and target sizes across 0.5–2 MB.
pub const DEMO_GIFS: &[(&str, u64)] = &[
    ("04631301-Front-Plank_waist-FIX_360.gif", 520 * 1024),
    ("02891301-Dumbbell-Bench-Press_Chest_360.gif", 800 * 1024),
    ("35561301-High-Knee-Run_Cardio_360.gif", 1100 * 1024),
    ("00431301-Barbell-Squat_Thighs_360.gif", 1400 * 1024),
    ("06621301-Push-up_Chest_360.gif", 1700 * 1024),
    ("32941301-Jumping-Jack_Cardio_360.gif", 1950 * 1024),
];

/// Where `--demo` puts its GIFs, under the web root (`/media/fitnessally/...`).
pub const DEMO_DIR: &str = "fitnessally";

/// Counts bytes on their way to the file, so frames stop at the target size
/// without holding the GIF in memory.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn seed_of(name: &str) -> u64 {
    // FNV-1a
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) | 1
}

/// Write an animated GIF of about `target` bytes (within one frame) to `path`,
/// its content determined by `seed`. Returns the size written.
pub fn write_gif(path: &Path, seed: u64, target: u64) -> io::Result<u64> {
    let edge = GIF_EDGE as usize;
    // Palette: 0..=223 a warm background ramp, 224..=255 figure colours.
    let mut palette = Vec::with_capacity(768);
    for i in 0..224u32 {
        palette.extend_from_slice(&[(40 + i * 3 / 4) as u8, (60 + i / 2) as u8, (90 + i / 3) as u8]);
    }
    for i in 0..32u32 {
        palette.extend_from_slice(&[(200 + i) as u8, (30 + i * 2) as u8, (20 + i) as u8]);
    }
    let tmp = path.with_extension("gif.tmp");
    let mut rng = Rng(seed | 1);
    let written = {
        let out = Counting { inner: BufWriter::new(File::create(&tmp)?), n: 0 };
        let mut enc = gif::Encoder::new(out, GIF_EDGE, GIF_EDGE, &palette).map_err(io::Error::other)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(io::Error::other)?;
        let mut pixels = vec![0u8; edge * edge];
        let mut frame_no = 0u32;
        loop {
            let t = frame_no as f64 / 12.0 * std::f64::consts::TAU;
            let cx = edge as f64 / 2.0 + 70.0 * t.sin();
            let cy = edge as f64 / 2.5 + 40.0 * (2.0 * t).cos().abs();
            for y in 0..edge {
                for x in 0..edge {
                    let ramp = ((x + y) * 160 / (2 * edge)) as u64;
                    let noise = rng.next() % 64;
                    let mut c = (ramp + noise).min(223) as u8;
                    let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                    if dx * dx + dy * dy < 900.0 {
                        c = 224 + (frame_no % 32) as u8;
                    }
                    // the swinging bar (arms / weight)
                    let bar_y = cy + 60.0 + 30.0 * t.cos();
                    if (y as f64 - bar_y).abs() < 6.0 && (x as f64 - cx).abs() < 110.0 {
                        c = 255;
                    }
                    // body
                    if (x as f64 - cx).abs() < 10.0 && (y as f64) > cy + 30.0 && (y as f64) < cy + 170.0 {
                        c = 240;
                    }
                    pixels[y * edge + x] = c;
                }
            }
            let mut frame = gif::Frame::from_indexed_pixels(GIF_EDGE, GIF_EDGE, pixels.clone(), None);
            frame.delay = 8; // centiseconds
            enc.write_frame(&frame).map_err(io::Error::other)?;
            frame_no += 1;
            if enc.get_ref().n >= target || frame_no >= 400 {
                break;
            }
        }
        let mut out = enc.into_inner().map_err(io::Error::other)?;
        out.flush()?;
        out.inner.get_ref().sync_all()?;
        out.n
    };
    std::fs::rename(&tmp, path)?;
    Ok(written)
}

/// Fill `<web_root>/fitnessally/` with the demo GIFs that are missing. Returns the
/// paths (relative to the web root) of all demo GIFs.
pub fn ensure_demo_gifs(web_root: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = web_root.join(DEMO_DIR);
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for (name, target) in DEMO_GIFS {
        let path = dir.join(name);
        if !path.exists() {
            write_gif(&path, seed_of(name), *target)?;
        }
        out.push(Path::new(DEMO_DIR).join(name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_is_real_animated_and_sized() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gif");
        let n = write_gif(&p, 42, 300 * 1024).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), n);
        assert!(n >= 300 * 1024 && n < 600 * 1024, "{n}");
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::Indexed);
        let mut dec = opts.read_info(File::open(&p).unwrap()).unwrap();
        assert_eq!((dec.width(), dec.height()), (GIF_EDGE, GIF_EDGE));
        let mut frames = 0;
        while dec.read_next_frame().unwrap().is_some() {
            frames += 1;
        }
        assert!(frames >= 2, "animated: {frames} frames");
        // deterministic
        let q = dir.path().join("y.gif");
        write_gif(&q, 42, 300 * 1024).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    }
}
