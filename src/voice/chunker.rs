//! The sentence chunker: turns a stream of LLM text into pieces worth speaking,
//! with the original's adaptive rules, so speech starts after the first sentence
//! instead of after the whole answer.
//!
//! - **First chunk (bootstrap)**: the text up to the first sentence end (`.`, `!`,
//!   `?` followed by a space) once that is at least 15 characters; or, when the
//!   LLM is slow to finish a sentence, after 1 s with 30 characters buffered, the
//!   first 20 words.
//! - **Later chunks**: when the unspoken text is at least 80 characters and ends a
//!   sentence, or 5 s have passed since the last chunk: cut at the sentence end
//!   (at or past 80 characters) closest to the target size, which grows with the
//!   chunk number (120, then 200 for chunks ≤ 4, 350 for ≤ 8, then 500), never past
//!   800 characters.
//! - **Flush** at the end of the answer: the rest, final.
//!
//! Time is passed in (`now`), so the rules are tested without sleeping; the turn
//! asks [`Chunker::deadline`] when to call [`Chunker::tick`]. Bound: the buffer
//! holds only unspoken text, at most the answer's own bound
//! ([`super::MAX_ANSWER_BYTES`]).

use std::time::{Duration, Instant};

pub const BOOTSTRAP_MIN_CHARS: usize = 15;
pub const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(1);
pub const BOOTSTRAP_TIMEOUT_CHARS: usize = 30;
pub const BOOTSTRAP_WORDS: usize = 20;
pub const MIN_CHUNK_CHARS: usize = 80;
pub const MAX_CHUNK_CHARS: usize = 800;
pub const STALL: Duration = Duration::from_secs(5);

/// A piece of text to speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based, in order.
    pub index: u32,
    pub text: String,
    pub is_final: bool,
}

pub struct Chunker {
    buf: String,
    started: Instant,
    last: Instant,
    count: u32,
    done: bool,
}

impl Chunker {
    pub fn new(now: Instant) -> Self {
        Chunker { buf: String::new(), started: now, last: now, count: 0, done: false }
    }

    /// Chunks emitted so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Add LLM text; returns the chunks ready now.
    pub fn push(&mut self, text: &str, now: Instant) -> Vec<Chunk> {
        self.buf.push_str(text);
        self.tick(now)
    }

    /// When to call [`Chunker::tick`] next if no text arrives (a time rule may fire).
    pub fn deadline(&self) -> Option<Instant> {
        if self.done || self.buf.trim().is_empty() {
            return None;
        }
        Some(if self.count == 0 { self.started + BOOTSTRAP_TIMEOUT } else { self.last + STALL })
    }

    /// The chunks the rules release at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Chunk> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.count == 0 {
            match self.bootstrap(now) {
                Some(c) => out.push(c),
                None => return out,
            }
            self.last = now;
        }
        while let Some(c) = self.next_chunk(now) {
            out.push(c);
            self.last = now;
        }
        out
    }

    /// The end of the answer: whatever is left, as the final chunk.
    pub fn finish(&mut self) -> Option<Chunk> {
        self.done = true;
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        if rest.is_empty() || !rest.chars().any(char::is_alphanumeric) {
            return None;
        }
        Some(self.emit(rest.to_owned(), true))
    }

    fn emit(&mut self, text: String, is_final: bool) -> Chunk {
        self.count += 1;
        Chunk { index: self.count, text, is_final }
    }

    fn bootstrap(&mut self, now: Instant) -> Option<Chunk> {
        let first_end = sentence_ends(&self.buf).next();
        if let Some(end) = first_end {
            let text = self.buf[..end].trim().to_owned();
            if text.len() >= BOOTSTRAP_MIN_CHARS {
                self.buf.drain(..end);
                return Some(self.emit(text, false));
            }
        }
        if now.duration_since(self.started) >= BOOTSTRAP_TIMEOUT && self.buf.trim().len() >= BOOTSTRAP_TIMEOUT_CHARS {
            // the first 20 words (not the last, unfinished one)
            let words: Vec<(usize, &str)> = word_spans(&self.buf).collect();
            let complete = if self.buf.ends_with(char::is_whitespace) { words.len() } else { words.len().saturating_sub(1) };
            let n = complete.min(BOOTSTRAP_WORDS);
            if n == 0 {
                return None;
            }
            let (start, w) = words[n - 1];
            let end = start + w.len();
            let text = self.buf[..end].trim().to_owned();
            self.buf.drain(..end);
            return Some(self.emit(text, false));
        }
        None
    }

    fn target(&self) -> usize {
        match self.count {
            0 => 120,
            1..=4 => 200,
            5..=8 => 350,
            _ => 500,
        }
    }

    fn next_chunk(&mut self, now: Instant) -> Option<Chunk> {
        let len = self.buf.trim_end().len();
        let at_sentence_end = self.buf.trim_end().ends_with(['.', '!', '?']);
        let stalled = now.duration_since(self.last) >= STALL && !self.buf.trim().is_empty();
        if !(len >= MIN_CHUNK_CHARS && at_sentence_end) && !stalled && self.buf.len() < MAX_CHUNK_CHARS {
            return None;
        }
        let target = self.target();
        // sentence ends at or past the minimum, the one closest to the target
        let mut ends: Vec<usize> = sentence_ends(&self.buf).filter(|e| *e >= MIN_CHUNK_CHARS && *e <= MAX_CHUNK_CHARS).collect();
        if at_sentence_end && len >= MIN_CHUNK_CHARS && len <= MAX_CHUNK_CHARS {
            ends.push(self.buf.len());
        }
        let cut = match ends.iter().min_by_key(|e| e.abs_diff(target)) {
            Some(e) => *e,
            None if stalled || self.buf.len() >= MAX_CHUNK_CHARS => {
                // no sentence end: a word boundary within the maximum
                let limit = floor_char(&self.buf, MAX_CHUNK_CHARS.min(self.buf.len()));
                match self.buf[..limit].rfind(char::is_whitespace) {
                    Some(i) if i > 0 && limit < self.buf.len() => i,
                    _ if stalled && limit == self.buf.len() => {
                        // everything so far is one unfinished word or phrase: wait for more,
                        // unless it is already long
                        if self.buf.trim().len() < BOOTSTRAP_TIMEOUT_CHARS {
                            return None;
                        }
                        match self.buf.rfind(char::is_whitespace) {
                            Some(i) if i > 0 => i,
                            _ => return None,
                        }
                    }
                    _ => limit,
                }
            }
            None => return None,
        };
        let text = self.buf[..cut].trim().to_owned();
        self.buf.drain(..cut);
        if text.is_empty() {
            return None;
        }
        Some(self.emit(text, false))
    }
}

/// Byte offsets just past each sentence end: `[.!?]+` followed by whitespace
/// (a `.` inside `1.5` or `e.g` is not one).
fn sentence_ends(s: &str) -> impl Iterator<Item = usize> + '_ {
    let b = s.as_bytes();
    (0..b.len()).filter_map(move |i| {
        let punct = matches!(b[i], b'.' | b'!' | b'?');
        let next_ws = b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace());
        (punct && next_ws).then_some(i + 1)
    })
}

fn word_spans(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split_whitespace().map(move |w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Text as a speech engine should read it (the original's `preprocessTextForTTS`):
/// markdown `*` and `#` dropped, `tbsp`/`tsp` spelled out, digit ranges `2-3` read
/// "2 to 3", and halves, quarters and thirds spoken as words.
pub fn speakable(text: &str) -> String {
    let mut s: String = text.chars().filter(|c| *c != '*' && *c != '#').collect();
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| {
            let (core, tail) = w.split_at(w.trim_end_matches([',', '.', ';', ':', '!', '?']).len());
            let core = match core {
                "tbsp" | "Tbsp" | "tbsp." => "tablespoons".to_owned(),
                "tsp" | "tsp." => "teaspoons".to_owned(),
                _ => spoken_number(core).unwrap_or_else(|| core.to_owned()),
            };
            format!("{core}{tail}")
        })
        .collect();
    s = words.join(" ");
    s
}

fn spoken_number(w: &str) -> Option<String> {
    if let Some((a, b)) = w.split_once('-') {
        if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()) {
            return Some(format!("{a} to {b}"));
        }
    }
    let (int, frac) = w.split_once('.')?;
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let words = match frac {
        "5" | "50" => "one half",
        "25" => "one quarter",
        "75" => "three quarters",
        "33" => "one third",
        "67" | "66" => "two thirds",
        _ => return None,
    };
    Some(if int == "0" { words.to_owned() } else { format!("{int} and {words}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_goes_out_alone_and_early() {
        let t0 = Instant::now();
        let mut c = Chunker::new(t0);
        assert!(c.push("Hello there", t0).is_empty());
        let out = c.push(", this is the first sentence. And then", t0);
        assert_eq!(out, vec![Chunk { index: 1, text: "Hello there, this is the first sentence.".into(), is_final: false }]);
        assert!(c.push(" more text follows", t0).is_empty(), "later chunks wait for 80 characters at a sentence end");
        let out = c.push(" until it is long enough to be a chunk of its own, which it is now. ", t0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].index, 2);
        assert!(out[0].text.starts_with("And then more text follows") && out[0].text.ends_with("now."));
        assert!(c.push("Tail", t0).is_empty());
        assert_eq!(c.finish(), Some(Chunk { index: 3, text: "Tail".into(), is_final: true }));
    }

    #[test]
    fn a_short_first_sentence_waits_then_time_releases_words() {
        let t0 = Instant::now();
        let mut c = Chunker::new(t0);
        assert!(c.push("Hi. ", t0).is_empty(), "under 15 characters");
        assert!(c.push("one two three four five six seven", t0).is_empty());
        assert_eq!(c.deadline(), Some(t0 + BOOTSTRAP_TIMEOUT));
        let out = c.tick(t0 + BOOTSTRAP_TIMEOUT);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "Hi. one two three four five six", "complete words only");
    }

    #[test]
    fn a_stalled_llm_still_gets_spoken_and_sizes_stay_bounded() {
        let t0 = Instant::now();
        let mut c = Chunker::new(t0);
        c.push("This is a complete first sentence. ", t0);
        c.push("no sentence end here but several words", t0);
        assert!(c.tick(t0 + Duration::from_secs(1)).is_empty());
        let out = c.tick(t0 + STALL);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "no sentence end here but several");
        let long = "word ".repeat(400);
        let out = c.push(&long, t0 + STALL);
        assert!(!out.is_empty());
        assert!(out.iter().all(|ch| ch.text.len() <= MAX_CHUNK_CHARS));
        let mut idx: Vec<u32> = out.iter().map(|c| c.index).collect();
        idx.dedup();
        assert_eq!(idx.len(), out.len());
    }

    #[test]
    fn decimals_are_not_sentence_ends() {
        let t0 = Instant::now();
        let mut c = Chunker::new(t0);
        assert!(c.push("Use 1.5 cups of", t0).is_empty());
        let out = c.push(" flour in the bowl. Next", t0);
        assert_eq!(out[0].text, "Use 1.5 cups of flour in the bowl.");
    }

    #[test]
    fn speakable_text() {
        assert_eq!(speakable("**Add** 1.5 tbsp of salt, 2-3 times."), "Add 1 and one half tablespoons of salt, 2 to 3 times.");
        assert_eq!(speakable("# Title\n0.25 tsp"), "Title 0.25 teaspoons".replace("0.25", "one quarter"));
    }
}
