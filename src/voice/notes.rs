//! ALFRED notes (`/api/notes`): a recording or a transcript becomes the caller's
//! private records — a `text` record with the transcript and a `notes` record with
//! a summary (key points, decisions, action items, open questions, sentiment,
//! topics, keywords, tags) — written through the records service's new-record
//! path (`storage=gun`, access `private`, owner the caller). The summary comes
//! from the configured LLM (the same providers and race as a voice turn) and,
//! with none configured or none answering, is extractive (sentences picked from
//! the transcript by word weight and cue words) and says so in the record
//! (`summary_method`, `summary_note`) and the answer. Questions about notes are
//! answered from the caller's own notes only ([`VoiceService::notes_answer`]).
//!
//! Asynchronous ingestion runs as jobs in [`super::jobs::NoteJobs`] (bounded in
//! entries, running jobs and age). Bounds here: a transcript ([`MAX_TRANSCRIPT_BYTES`]), the text handed to the
//! LLM ([`MAX_SUMMARY_INPUT`], [`MAX_NOTES_CONTEXT`]), notes read to answer a
//! question ([`MAX_CONVERSE_NOTES`]), summary items ([`MAX_ITEMS`]).

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::jobs::JobStatus;
use super::llm::{self, Message};
use super::VoiceService;
use crate::records::service::{Caller, RecordsError};
use crate::store::Viewer;

/// Bound: bytes of a transcript (given or transcribed).
pub const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;
/// Bound: bytes of transcript handed to the LLM for a summary.
pub const MAX_SUMMARY_INPUT: usize = 48 * 1024;
/// Bound: bytes of the notes handed to the LLM to answer a question.
pub const MAX_NOTES_CONTEXT: usize = 24 * 1024;
/// Bound: notes read to answer a question.
pub const MAX_CONVERSE_NOTES: usize = 5;
/// Bound: items kept per summary list.
pub const MAX_ITEMS: usize = 12;
/// Bound: bytes of an LLM summary read.
pub const MAX_SUMMARY_ANSWER: usize = 32 * 1024;

pub const NOTE_TYPES: [&str; 7] = ["MEETING", "ONE_ON_ONE", "STANDUP", "IDEA", "REFLECTION", "INTERVIEW", "OTHER"];
pub const DEVICE_TYPES: [&str; 4] = ["IPHONE", "MAC", "WATCH", "OTHER"];
pub const CHUNKING_STRATEGIES: [&str; 6] = ["BY_TIME_15S", "BY_TIME_30S", "BY_TIME_60S", "BY_SENTENCE", "BY_PARAGRAPH", "BY_SPEAKER"];

/// Said in the record and the answer when the summary is extractive.
pub const EXTRACTIVE_NOTE: &str =
    "No language model is configured (or none answered): this summary is extractive — sentences picked from the transcript, not written by an LLM.";

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Note not found")]
    NotFound,
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// The request fields of `from-audio` (the original's names), checked.
#[derive(Debug, Clone, Default)]
pub struct NoteParams {
    pub start_time: String,
    pub end_time: String,
    pub duration_sec: i64,
    pub note_type: String,
    pub device_type: String,
    pub capture_location: Option<String>,
    pub chunking_strategy: String,
    pub participants: Vec<String>,
    pub roles: Vec<String>,
    pub calendar_event_id: Option<String>,
    pub calendar_start_time: Option<String>,
    pub calendar_end_time: Option<String>,
    pub model: Option<String>,
}

/// A JSON array in a string (multipart sends strings), or a single value.
fn list_field(v: Option<&str>) -> Vec<String> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else { return Vec::new() };
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).take(64).collect(),
        _ => vec![s.to_owned()],
    }
}

impl NoteParams {
    /// Check the fields as the original does, in its order and words.
    pub fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<NoteParams, NotesError> {
        let bad = |m: &str| Err(NotesError::BadRequest(m.to_owned()));
        let (Some(start), Some(end)) = (get("start_time"), get("end_time")) else { return bad("Missing required fields: start_time and end_time") };
        let Some(note_type) = get("note_type") else { return bad("Missing required field: note_type") };
        let Some(device_type) = get("device_type") else { return bad("Missing required field: device_type") };
        if !NOTE_TYPES.contains(&note_type.as_str()) {
            return bad(&format!("Invalid note_type. Must be one of: {}", NOTE_TYPES.join(", ")));
        }
        if !DEVICE_TYPES.contains(&device_type.as_str()) {
            return bad(&format!("Invalid device_type. Must be one of: {}", DEVICE_TYPES.join(", ")));
        }
        let (Some((s, _)), Some((e, _))) = (crate::civil::parse_iso(&start), crate::civil::parse_iso(&end)) else {
            return bad("start_time and end_time must be ISO 8601 dates");
        };
        if s >= e {
            return bad("start_time must be before end_time");
        }
        let chunking_strategy = get("chunking_strategy").unwrap_or_else(|| "BY_TIME_30S".into());
        if !CHUNKING_STRATEGIES.contains(&chunking_strategy.as_str()) {
            return bad(&format!("Invalid chunking_strategy. Must be one of: {}", CHUNKING_STRATEGIES.join(", ")));
        }
        let participants = list_field(get("participant_display_names").as_deref());
        let roles = list_field(get("participant_roles").as_deref());
        if !participants.is_empty() && !roles.is_empty() && participants.len() != roles.len() {
            return bad("participant_display_names and participant_roles must have same length");
        }
        Ok(NoteParams {
            start_time: start,
            end_time: end,
            duration_sec: e - s,
            note_type,
            device_type,
            capture_location: get("capture_location"),
            chunking_strategy,
            participants,
            roles,
            calendar_event_id: get("calendar_event_id"),
            calendar_start_time: get("calendar_start_time"),
            calendar_end_time: get("calendar_end_time"),
            model: get("model"),
        })
    }
}

/// The note's id: SHA-256 (hex) of the trimmed transcript with `\r\n` → `\n`
/// (the original's rule, without its Unicode NFC step).
pub fn note_hash(transcript: &str) -> String {
    hex::encode(Sha256::digest(transcript.trim().replace("\r\n", "\n").as_bytes()))
}

/// Whether `s` is a note hash (64 lowercase hex digits).
pub fn is_note_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionItem {
    pub text: String,
    pub assignee: String,
    pub due_text: String,
}

/// A note's summary, in the original's fields, and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub key_points: Vec<String>,
    pub decisions: Vec<String>,
    pub action_items: Vec<ActionItem>,
    pub open_questions: Vec<String>,
    pub sentiment_overall: String,
    pub topics: Vec<String>,
    pub keywords: Vec<String>,
    pub tags: Vec<String>,
    /// `llm` or `extractive`.
    pub method: &'static str,
    /// The provider that wrote it, or `extractive`.
    pub model: String,
}

impl Summary {
    /// The counts the original answers with, plus how the summary was made.
    pub fn counts(&self) -> Value {
        let mut v = json!({
            "keyPoints": self.key_points.len(),
            "decisions": self.decisions.len(),
            "actionItems": self.action_items.len(),
            "openQuestions": self.open_questions.len(),
            "method": self.method,
            "model": self.model,
        });
        if self.method == "extractive" {
            v["note"] = json!(EXTRACTIVE_NOTE);
        }
        v
    }
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        if ch == '\n' {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_owned());
            }
            cur.clear();
            continue;
        }
        cur.push(ch);
        if matches!(ch, '.' | '!' | '?') {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_owned());
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

const STOP: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out", "has", "his", "how", "its", "may", "now",
    "who", "did", "get", "him", "let", "she", "too", "use", "what", "when", "where", "which", "with", "would", "could", "should", "about", "some", "that",
    "this", "there", "their", "them", "then", "they", "have", "from", "your", "into", "will", "just", "also", "been", "were", "than", "more", "very", "okay",
    "yeah", "really", "think", "going", "need", "needs", "want", "like", "know", "make", "sure", "well", "right", "lets", "we'll", "i'll", "it's", "that's",
    "thing", "things", "said", "says", "because", "these", "those", "here", "only", "each", "other", "after", "before", "being", "over", "again",
];

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| w.chars().count() >= 4 && !STOP.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
}

fn has_any(s: &str, cues: &[&str]) -> bool {
    let l = format!(" {} ", s.to_lowercase());
    cues.iter().any(|c| l.contains(c))
}

/// The assignee of an action sentence: a capitalised first word before "will" / "to" / "should".
fn assignee_of(s: &str) -> String {
    let mut it = s.split_whitespace();
    match (it.next(), it.next()) {
        (Some(name), Some(verb))
            if name.chars().next().is_some_and(char::is_uppercase)
                && !["I", "We", "We'll", "I'll", "Let's", "Lets", "Someone", "Somebody", "The", "This", "That", "It", "Action", "Todo", "TODO"].contains(&name)
                && ["will", "should", "needs", "must", "to", "is", "can"].contains(&verb.to_lowercase().as_str()) =>
        {
            name.trim_matches(|c: char| !c.is_alphanumeric()).to_owned()
        }
        _ => "unassigned".into(),
    }
}

/// The due date of an action sentence: "by …", "before …", "due …", a weekday, "tomorrow", "next week".
fn due_of(s: &str) -> String {
    let l = s.to_lowercase();
    for cue in ["by ", "before ", "due "] {
        if let Some(i) = l.find(cue) {
            let rest: String = s[i..].split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            return rest.trim_end_matches(['.', '!', '?', ',']).to_owned();
        }
    }
    for w in ["tomorrow", "next week", "monday", "tuesday", "wednesday", "thursday", "friday", "end of day", "end of week"] {
        if l.contains(w) {
            return w.into();
        }
    }
    "no date".into()
}

/// A summary picked from the transcript: the sentences with the heaviest words
/// (by frequency over the transcript) as key points, cue words for decisions and
/// action items, questions as open questions, the frequent words as keywords.
pub fn extractive(text: &str) -> Summary {
    let sents = sentences(text);
    let mut freq: HashMap<String, usize> = HashMap::new();
    for w in words(text) {
        *freq.entry(w).or_default() += 1;
    }
    let mut kw: Vec<(&String, &usize)> = freq.iter().collect();
    kw.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let keywords: Vec<String> = kw.iter().take(8).map(|(w, _)| (*w).clone()).collect();
    let topics: Vec<String> = keywords.iter().take(3).cloned().collect();
    let tags: Vec<String> = keywords.iter().take(6).map(|w| w.replace(['\'', '-'], "_")).collect();
    const ACTION: &[&str] = &[" will ", " need to ", " needs to ", " should ", " must ", " todo", " to-do", "action item", " follow up", " follow-up", " let's ", " going to ", " i'll ", " we'll ", " assign"];
    const DECISION: &[&str] = &[" decided", " agreed", " decision", " we will go with", " settled on", " approved", " chose ", " conclusion"];
    let mut action_items = Vec::new();
    let mut decisions = Vec::new();
    let mut open_questions = Vec::new();
    for s in &sents {
        if s.ends_with('?') {
            if open_questions.len() < MAX_ITEMS {
                open_questions.push(s.clone());
            }
        } else if has_any(s, DECISION) {
            if decisions.len() < MAX_ITEMS {
                decisions.push(s.clone());
            }
        } else if has_any(s, ACTION) && action_items.len() < MAX_ITEMS {
            action_items.push(ActionItem { text: s.clone(), assignee: assignee_of(s), due_text: due_of(s) });
        }
    }
    // key points: the heaviest statements, in the order spoken
    let mut scored: Vec<(usize, f64)> = sents
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.ends_with('?') && s.split_whitespace().count() >= 4)
        .map(|(i, s)| {
            let ws: Vec<String> = words(s).collect();
            let score = ws.iter().map(|w| freq.get(w).copied().unwrap_or(0) as f64).sum::<f64>() / (ws.len().max(1) as f64).sqrt();
            (i, score)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = (sents.len() / 4).clamp(1, 5);
    let mut picked: Vec<usize> = scored.iter().take(n).map(|(i, _)| *i).collect();
    picked.sort_unstable();
    let mut key_points: Vec<String> = picked.into_iter().map(|i| sents[i].clone()).collect();
    if key_points.is_empty() {
        key_points.extend(sents.first().cloned());
    }
    const POS: &[&str] = &[" great", " good", " excellent", " happy", " glad", " excited", " love", " success", " well done", " thanks", " thank you"];
    const NEG: &[&str] = &[" problem", " issue", " concern", " worried", " bad", " fail", " delay", " blocked", " risk", " frustrat", " unhappy"];
    let (p, q) = sents.iter().fold((0, 0), |(p, q), s| (p + has_any(s, POS) as usize, q + has_any(s, NEG) as usize));
    let sentiment_overall = if p > q + 1 { "POSITIVE" } else if q > p + 1 { "NEGATIVE" } else { "NEUTRAL" };
    Summary {
        key_points,
        decisions,
        action_items,
        open_questions,
        sentiment_overall: sentiment_overall.into(),
        topics,
        keywords,
        tags,
        method: "extractive",
        model: "extractive".into(),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::trim).filter(|s| !s.is_empty()).map(|s| s.chars().take(1000).collect()))
        .take(MAX_ITEMS)
        .collect()
}

/// An LLM's answer to the summary prompt: the first `{…}` in it, in the
/// original's structure; None when there is no such object.
pub fn parse_llm_summary(answer: &str, model: &str) -> Option<Summary> {
    let (a, b) = (answer.find('{')?, answer.rfind('}')?);
    let v: Value = serde_json::from_str(answer.get(a..=b)?).ok()?;
    v.as_object()?;
    let action_items = v["action_items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| match x {
            Value::String(s) => Some(ActionItem { text: s.clone(), assignee: "unassigned".into(), due_text: "no date".into() }),
            Value::Object(_) => Some(ActionItem {
                text: x["text"].as_str()?.to_owned(),
                assignee: x["assignee"].as_str().filter(|s| !s.is_empty()).unwrap_or("unassigned").to_owned(),
                due_text: x["due_text"].as_str().filter(|s| !s.is_empty()).unwrap_or("no date").to_owned(),
            }),
            _ => None,
        })
        .take(MAX_ITEMS)
        .collect();
    let sentiment = v["sentiment_overall"].as_str().unwrap_or("").to_uppercase();
    let sentiment = if sentiment.contains("POS") { "POSITIVE" } else if sentiment.contains("NEG") { "NEGATIVE" } else { "NEUTRAL" };
    Some(Summary {
        key_points: str_list(&v["key_points"]),
        decisions: str_list(&v["decisions"]),
        action_items,
        open_questions: str_list(&v["open_questions"]),
        sentiment_overall: sentiment.into(),
        topics: str_list(&v["topics"]),
        keywords: str_list(&v["keywords"]),
        tags: str_list(&v["tags"]).into_iter().map(|t| t.to_lowercase().replace(' ', "_")).collect(),
        method: "llm",
        model: model.to_owned(),
    })
}

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn summary_prompt(text: &str, note_type: &str, participants: &[String]) -> Vec<Message> {
    let who = if participants.is_empty() { String::new() } else { format!("Participants: {}\n", participants.join(", ")) };
    let user = format!(
        "Please analyze the following {note_type} transcript and provide a structured summary.\n{who}\n\
FORMAT YOUR RESPONSE AS A JSON OBJECT WITH THIS EXACT STRUCTURE:\n\
{{\"key_points\": [\"...\"], \"decisions\": [\"...\"], \"action_items\": [{{\"text\": \"...\", \"assignee\": \"person or 'unassigned'\", \"due_text\": \"due date or 'no date'\"}}], \
\"open_questions\": [\"...\"], \"sentiment_overall\": \"NEGATIVE\" | \"NEUTRAL\" | \"POSITIVE\", \"topics\": [\"...\"], \"keywords\": [\"...\"], \"tags\": [\"lowercase_with_underscores\"]}}\n\
Return ONLY the JSON object. Use [] for a category with no items.\n\nTRANSCRIPT:\n{}\n\nJSON RESPONSE:",
        clip(text, MAX_SUMMARY_INPUT)
    );
    vec![
        Message::new("system", "You are a helpful assistant that summarizes meeting notes and conversations. Return only valid JSON."),
        Message::new("user", user),
    ]
}

/// What a stored note holds that the answers need.
#[derive(Debug, Clone)]
pub struct StoredNote {
    pub did: String,
    pub record: Value,
    pub transcript: Option<Value>,
}

impl StoredNote {
    fn notes(&self) -> &Value {
        &self.record["data"]["notes"]
    }
    pub fn title(&self) -> String {
        self.record["data"]["basic"]["name"].as_str().unwrap_or("Untitled note").to_owned()
    }
    pub fn transcript_text(&self) -> &str {
        self.transcript.as_ref().and_then(|t| t["data"]["text"]["value"].as_str()).unwrap_or("")
    }
    /// The note as context for the LLM: title, type, date, summary, transcript (clipped to `budget`).
    fn context(&self, budget: usize) -> String {
        let n = self.notes();
        let list = |k: &str| n[k].as_array().map(|a| a.iter().filter_map(Value::as_str).map(|s| format!("- {s}")).collect::<Vec<_>>().join("\n")).unwrap_or_default();
        let mut s = format!(
            "Note: {}\nType: {}\nDate: {}\nParticipants: {}\nKey points:\n{}\nDecisions:\n{}\nAction items:\n{}\nOpen questions:\n{}\n",
            self.title(),
            n["note_type"].as_str().unwrap_or(""),
            n["created_at"].as_str().unwrap_or(""),
            n["participant_display_names"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
            list("summary_key_points"),
            list("summary_decisions"),
            list("summary_action_item_texts"),
            list("summary_open_questions"),
        );
        let t = self.transcript_text();
        if !t.is_empty() && s.len() < budget {
            s.push_str("Transcript:\n");
            s.push_str(clip(t, budget - s.len()));
            s.push('\n');
        }
        clip(&s, budget).to_owned()
    }
}

impl VoiceService {
    /// A summary by the LLM (`model` as a voice turn picks providers), else extractive.
    pub async fn summarize(&self, text: &str, note_type: &str, participants: &[String], model: Option<&str>) -> Summary {
        let providers = self.providers_for(model);
        if providers.is_empty() {
            return extractive(text);
        }
        let messages = summary_prompt(text, note_type, participants);
        let answer = match llm::race(&self.client, &providers, &messages, 0.2, self.limits.llm_first_token).await {
            Ok(w) => {
                let provider = w.provider.clone();
                llm::collect(w, MAX_SUMMARY_ANSWER).await.map(|t| (t, provider))
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok((t, provider)) => match parse_llm_summary(&t, &provider) {
                Some(s) => s,
                None => {
                    tracing::warn!(provider, "notes: the LLM's summary was not JSON; the summary is extractive");
                    extractive(text)
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "notes: no LLM summary; the summary is extractive");
                extractive(text)
            }
        }
    }

    /// Store a note for `key`: the transcript record, then the note record
    /// (both private GUN records of the caller). `summary_version` counts regenerations.
    pub async fn store_note(&self, key: &str, p: &NoteParams, transcript: &str, language: &str, summary: &Summary, audio: Option<Value>) -> Result<Value, NotesError> {
        let hash = note_hash(transcript);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let tr = json!({
            "basic": {"name": format!("Transcript for note {}...", &hash[..8]), "description": "Full transcript from Alfred Notes", "date": now, "language": language, "tagItems": ["alfred_note_transcript"]},
            "text": {"value": transcript},
            "accessControl": {"access_level": "private"},
        });
        let q = format!("storage=gun&recordType=text&localId={hash}_transcript");
        let tr_out = self.records.new_record(key, &q, &serde_json::to_vec(&tr).unwrap_or_default()).await?;
        let title = if p.participants.is_empty() {
            format!("{}: {}...", p.note_type, transcript.split_whitespace().take(8).collect::<Vec<_>>().join(" "))
        } else {
            format!("{}: {}", p.note_type, p.participants.join(", "))
        };
        let mut notes = json!({
            "note_type": p.note_type, "created_at": p.start_time, "ended_at": p.end_time, "device_type": p.device_type,
            "capture_location": p.capture_location, "audio_ref": null, "transcription_engine": null,
            "transcription_status": "COMPLETE", "transcript_full_text": tr_out["did"], "user_edits_present": false,
            "summary_version": 1,
            "participant_display_names": p.participants, "participant_person_refs": [], "participant_emails": [], "participant_roles": p.roles,
            "calendar_event_id": p.calendar_event_id, "calendar_start_time": p.calendar_start_time, "calendar_end_time": p.calendar_end_time,
            "linked_projects": [], "chunking_strategy": p.chunking_strategy, "chunk_count": 0, "chunk_ids": [],
        });
        put_summary(&mut notes, summary);
        let mut rec = json!({
            "basic": {"name": title, "description": "Alfred Notes capture", "date": now, "language": language, "tagItems": summary.tags},
            "notes": notes,
            "accessControl": {"access_level": "private"},
        });
        if let Some(a) = audio {
            rec["audio"] = a;
        }
        let q = format!("storage=gun&recordType=notes&localId={hash}");
        let out = self.records.new_record(key, &q, &serde_json::to_vec(&rec).unwrap_or_default()).await?;
        Ok(json!({
            "success": true,
            "noteHash": hash,
            "noteDid": out["did"],
            "transcriptDid": tr_out["did"],
            "transcriptionStatus": "COMPLETE",
            "chunkCount": 0,
            "summary": summary.counts(),
        }))
    }

    /// The caller's note `hash` (404 for a missing note and for anyone else's
    /// alike: the DID is made from the caller's own key), with its transcript.
    pub async fn load_note(&self, key: &str, hash: &str) -> Result<StoredNote, NotesError> {
        if !is_note_hash(hash) {
            return Err(NotesError::NotFound);
        }
        let did = format!("did:gun:{}:{hash}", crate::oip::did::user_hash(key));
        self.load_note_did(key, &did).await
    }

    /// The caller's note at `did`, or 404.
    pub async fn load_note_did(&self, key: &str, did: &str) -> Result<StoredNote, NotesError> {
        let viewer = Viewer::user(key);
        let store = &self.records.store;
        let raw = store.fetch_one(did, &viewer).await.map_err(RecordsError::from)?.ok_or(NotesError::NotFound)?;
        let record: Value = serde_json::from_str(raw.get()).map_err(|_| NotesError::NotFound)?;
        let owner = record["oip"]["creator"]["publicKey"].as_str() == Some(key)
            || record["data"]["accessControl"]["owner_public_key"].as_str() == Some(key);
        if record["oip"]["recordType"] != "notes" || !owner {
            return Err(NotesError::NotFound);
        }
        let transcript = match record["data"]["notes"]["transcript_full_text"].as_str() {
            Some(t) if t.starts_with("did:") => match store.fetch_one(t, &viewer).await {
                Ok(Some(r)) => serde_json::from_str::<Value>(r.get()).ok().filter(|v| v["oip"]["creator"]["publicKey"].as_str() == Some(key)),
                _ => None,
            },
            _ => None,
        };
        Ok(StoredNote { did: did.to_owned(), record, transcript })
    }

    /// The caller's notes (newest first), as `GET /api/records` answers, with the
    /// original's filters (`note_type`, `from`, `to`, `search`, `limit`, `page`, `sortBy`).
    pub async fn list_notes(&self, key: &str, get: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Value, NotesError> {
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("recordType", "notes");
            q.append_pair("source", "gun");
            q.append_pair("creator_did_address", &format!("did:gun:{}", crate::oip::did::user_hash(key)));
            q.append_pair("limit", &get("limit").unwrap_or_else(|| "20".into()));
            q.append_pair("page", &get("page").unwrap_or_else(|| "1".into()));
            q.append_pair("sortBy", &get("sortBy").unwrap_or_else(|| "date:desc".into()));
            if let Some(t) = get("note_type") {
                q.append_pair("fieldName", "notes.note_type");
                q.append_pair("fieldSearch", &t);
                q.append_pair("fieldMatchMode", "exact");
            }
            for (from, to) in [("from", "dateStart"), ("to", "dateEnd")] {
                if let Some(v) = get(from) {
                    q.append_pair(to, &v);
                }
            }
            if let Some(s) = get("search") {
                q.append_pair("search", &s);
            }
            q.finish()
        };
        let list = self.records.parse_list(&query).map_err(|e| NotesError::BadRequest(e.to_string()))?;
        let caller = Caller { viewer: Viewer::user(key), auth: json!({"authenticated": true, "user": {"publicKey": key}}) };
        let body = self.records.list(list, caller).await?;
        let bytes = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, super::rag::MAX_ANSWER_READ))
            .await
            .map_err(|e| NotesError::Records(RecordsError::BadRequest(format!("notes list over its bound: {e}"))))?
            .to_bytes();
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| NotesError::Records(RecordsError::BadRequest(e.to_string())))?;
        v["success"] = json!(true);
        Ok(v)
    }

    /// Summarize note `hash` again (with `model`), store it with `summary_version` + 1.
    pub async fn regenerate_summary(&self, key: &str, hash: &str, model: Option<&str>) -> Result<Value, NotesError> {
        let note = self.load_note(key, hash).await?;
        let text = note.transcript_text().to_owned();
        if text.trim().is_empty() {
            return Err(NotesError::BadRequest("The note's transcript is missing; its summary cannot be regenerated".into()));
        }
        let n = note.notes();
        let participants: Vec<String> = n["participant_display_names"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect();
        let summary = self.summarize(&text, n["note_type"].as_str().unwrap_or("OTHER"), &participants, model).await;
        let mut data: Map<String, Value> = note.record["data"].as_object().cloned().unwrap_or_default();
        let version = n["summary_version"].as_u64().unwrap_or(1) + 1;
        if let Some(notes) = data.get_mut("notes") {
            put_summary(notes, &summary);
            notes["summary_version"] = json!(version);
        }
        if let Some(b) = data.get_mut("basic") {
            b["tagItems"] = json!(summary.tags);
        }
        let q = format!("storage=gun&recordType=notes&localId={hash}");
        let out = self.records.new_record(key, &q, &serde_json::to_vec(&Value::Object(data)).unwrap_or_default()).await?;
        Ok(json!({
            "success": true,
            "noteHash": hash,
            "noteDid": out["did"],
            "summaryVersion": version,
            "summary": summary.counts(),
        }))
    }

    /// `POST /api/notes/converse`: a question answered from the caller's notes —
    /// `note_did` alone, or the caller's notes that match the question (the most
    /// recent ones when none match). The LLM answers from them; with none
    /// configured (or none answering) the answer quotes the notes and says so.
    pub async fn notes_answer(&self, key: &str, question: &str, note_did: Option<&str>, history: &[Message], model: Option<&str>, max_related: usize) -> Result<Value, NotesError> {
        let mut notes = Vec::new();
        let mode;
        if let Some(did) = note_did {
            notes.push(self.load_note_did(key, did).await?);
            mode = "selected_note";
        } else {
            mode = "all_notes";
            let terms = super::rag::terms(question);
            let n = max_related.clamp(1, MAX_CONVERSE_NOTES).to_string();
            let mut found = Vec::new();
            if !terms.is_empty() {
                let t = terms.join(" ");
                let args = |k: &str| match k {
                    "search" => Some(t.clone()),
                    "limit" => Some(n.clone()),
                    _ => None,
                };
                found = self.list_notes_dids(key, &args).await?;
                if found.is_empty() {
                    // the words may be in the transcript only: search the caller's transcripts
                    found = self.transcript_note_dids(key, &t, &n).await?;
                }
            }
            if found.is_empty() {
                let args = |k: &str| (k == "limit").then(|| n.clone());
                found = self.list_notes_dids(key, &args).await?;
            }
            for did in found {
                if let Ok(note) = self.load_note_did(key, &did).await {
                    notes.push(note);
                }
            }
        }
        let sources: Vec<Value> = notes.iter().map(|n| json!({"title": n.title(), "type": "notes", "did": n.did})).collect();
        let mut context = String::new();
        let per = MAX_NOTES_CONTEXT / notes.len().max(1);
        for n in &notes {
            context.push_str(&n.context(per));
            context.push('\n');
        }
        let mut ctx = json!({"mode": mode, "notes_used": notes.len(), "context_length": context.len()});
        if let (Some(n), true) = (notes.first(), note_did.is_some()) {
            ctx["note"] = json!({"did": n.did, "title": n.title(), "type": n.notes()["note_type"]});
            ctx["transcript_length"] = json!(n.transcript_text().len());
        }
        if notes.is_empty() {
            return Ok(json!({"success": true, "answer": "You have no notes yet, so I have nothing to answer from.", "context": ctx, "model": "none", "sources": []}));
        }
        let providers = self.providers_for(model);
        if !providers.is_empty() {
            let mut m = vec![Message::new(
                "system",
                format!("You are ALFRED, answering questions about the user's own meeting notes. Answer from these notes only; if they do not answer the question, say so. Be concise.\n\n{context}"),
            )];
            m.extend(history.iter().rev().take(8).rev().cloned());
            m.push(Message::new("user", question));
            match llm::race(&self.client, &providers, &m, 0.3, self.limits.llm_first_token).await {
                Ok(w) => {
                    let provider = w.provider.clone();
                    if let Ok(answer) = llm::collect(w, super::MAX_ANSWER_BYTES).await {
                        return Ok(json!({"success": true, "answer": answer.trim(), "context": ctx, "model": provider, "sources": sources}));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "notes: no LLM answer; answering from the notes' text"),
            }
        }
        // extractive: the notes' sentences that share the most words with the question
        let qwords: Vec<String> = words(question).collect();
        let mut best: Vec<(usize, String)> = Vec::new();
        for n in &notes {
            let nn = n.notes();
            let mut pool: Vec<String> = ["summary_key_points", "summary_decisions", "summary_action_item_texts"]
                .iter()
                .flat_map(|k| nn[*k].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)))
                .collect();
            pool.extend(sentences(clip(n.transcript_text(), MAX_TRANSCRIPT_BYTES)));
            for s in pool {
                let sw: Vec<String> = words(&s).collect();
                let score = qwords.iter().filter(|w| sw.contains(w)).count();
                if score > 0 && !best.iter().any(|(_, b)| *b == s) {
                    best.push((score, s));
                }
            }
        }
        best.sort_by(|a, b| b.0.cmp(&a.0));
        let answer = if best.is_empty() {
            format!("No language model is configured, and none of your notes ({}) mentions that.", notes.iter().map(|n| n.title()).collect::<Vec<_>>().join("; "))
        } else {
            format!("No language model is configured, so here is what your notes say: {}", best.iter().take(3).map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(" "))
        };
        Ok(json!({"success": true, "answer": answer, "context": ctx, "model": "extractive", "sources": sources}))
    }

    async fn list_notes_dids(&self, key: &str, get: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Vec<String>, NotesError> {
        let v = self.list_notes(key, get).await?;
        Ok(v["records"].as_array().into_iter().flatten().filter_map(|r| r["oip"]["did"].as_str().map(str::to_owned)).collect())
    }

    /// The notes whose transcripts match `terms` (the transcript's DID is the note's with `_transcript`).
    async fn transcript_note_dids(&self, key: &str, terms: &str, limit: &str) -> Result<Vec<String>, NotesError> {
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("recordType", "text");
            q.append_pair("source", "gun");
            q.append_pair("creator_did_address", &format!("did:gun:{}", crate::oip::did::user_hash(key)));
            q.append_pair("search", terms);
            q.append_pair("searchMatchMode", "OR");
            q.append_pair("limit", limit);
            q.finish()
        };
        let list = self.records.parse_list(&query).map_err(|e| NotesError::BadRequest(e.to_string()))?;
        let caller = Caller { viewer: Viewer::user(key), auth: Value::Null };
        let body = self.records.list(list, caller).await?;
        let bytes = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, super::rag::MAX_ANSWER_READ))
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(v["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["oip"]["did"].as_str()?.strip_suffix("_transcript").map(str::to_owned))
            .collect())
    }
}

/// Where a note's text comes from.
pub enum Source {
    Transcript(String),
    Audio(super::stt::AudioUpload),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Stt(#[from] super::stt::SttError),
    #[error("The transcription is empty: nothing was heard")]
    EmptyTranscript,
    #[error("The transcript is over {MAX_TRANSCRIPT_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Notes(#[from] NotesError),
}

/// The original's codec names for an audio type.
pub fn codec_of(mime: &str) -> &'static str {
    match mime {
        "audio/mpeg" | "audio/mp3" => "MP3",
        "audio/mp4" | "audio/x-m4a" => "AAC",
        "audio/wav" => "PCM",
        "audio/webm" => "OPUS",
        "audio/flac" => "FLAC",
        "audio/ogg" => "VORBIS",
        _ => "UNKNOWN",
    }
}

impl VoiceService {
    /// The whole ingestion: transcribe (audio), summarize, store; `progress` hears each step.
    pub async fn ingest(&self, key: &str, p: &NoteParams, src: Source, progress: &(dyn Fn(JobStatus, u8, &str) + Send + Sync)) -> Result<Value, IngestError> {
        let (text, language, audio) = match src {
            Source::Transcript(t) => {
                progress(JobStatus::Transcribing, 20, "Using provided transcript");
                (t, "en".to_owned(), None)
            }
            Source::Audio(a) => {
                progress(JobStatus::Transcribing, 5, "Transcribing the recording");
                let r = self.stt.transcribe(&self.client, &a, None, "transcribe").await?;
                let text = r["text"].as_str().unwrap_or("").trim().to_owned();
                let meta = json!({
                    "webUrl": "", "arweaveAddress": "", "ipfsAddress": "", "bittorrentAddress": "",
                    "filename": a.filename, "size": a.bytes.len(), "durationSec": p.duration_sec,
                    "audioCodec": codec_of(&a.mime), "contentType": a.mime,
                    "audioHash": hex::encode(Sha256::digest(&a.bytes)), "thumbnails": [], "creator": key,
                });
                (text, r["language"].as_str().filter(|l| !l.is_empty()).unwrap_or("en").to_owned(), Some(meta))
            }
        };
        if text.trim().is_empty() {
            return Err(IngestError::EmptyTranscript);
        }
        if text.len() > MAX_TRANSCRIPT_BYTES {
            return Err(IngestError::TooLarge);
        }
        progress(JobStatus::Summarizing, 50, "Generating summary");
        let summary = self.summarize(&text, &p.note_type, &p.participants, p.model.as_deref()).await;
        progress(JobStatus::CreatingRecords, 85, "Creating records");
        Ok(self.store_note(key, p, &text, &language, &summary, audio).await?)
    }
}

fn put_summary(notes: &mut Value, s: &Summary) {
    notes["summary_key_points"] = json!(s.key_points);
    notes["summary_decisions"] = json!(s.decisions);
    notes["summary_action_item_texts"] = json!(s.action_items.iter().map(|a| &a.text).collect::<Vec<_>>());
    notes["summary_action_item_assignees"] = json!(s.action_items.iter().map(|a| &a.assignee).collect::<Vec<_>>());
    notes["summary_action_item_due_texts"] = json!(s.action_items.iter().map(|a| &a.due_text).collect::<Vec<_>>());
    notes["summary_open_questions"] = json!(s.open_questions);
    notes["sentiment_overall"] = json!(s.sentiment_overall);
    notes["topics_auto"] = json!(s.topics);
    notes["keywords_auto"] = json!(s.keywords);
    notes["summary_method"] = json!(s.method);
    notes["summary_model"] = json!(s.model);
    notes["summary_note"] = if s.method == "extractive" { json!(EXTRACTIVE_NOTE) } else { Value::Null };
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEETING: &str = "We met to plan the spring launch. The launch budget is twenty thousand dollars. \
        We decided to move the launch to April. Alice will draft the press release by Friday. \
        Bob needs to book the venue before next week. The venue for the launch holds two hundred people. \
        What about the catering budget? Everyone was happy with the launch plan.";

    #[test]
    fn extractive_summary_finds_points_decisions_actions_questions() {
        let s = extractive(MEETING);
        assert_eq!(s.method, "extractive");
        assert!(!s.key_points.is_empty() && s.key_points.len() <= 5);
        assert_eq!(s.decisions, vec!["We decided to move the launch to April."]);
        assert_eq!(s.action_items.len(), 2, "{:?}", s.action_items);
        assert_eq!(s.action_items[0].assignee, "Alice");
        assert_eq!(s.action_items[0].due_text, "by Friday");
        assert_eq!(s.action_items[1].assignee, "Bob");
        assert_eq!(s.action_items[1].due_text, "before next week");
        assert_eq!(s.open_questions, vec!["What about the catering budget?"]);
        assert_eq!(s.keywords[0], "launch");
        assert!(s.counts()["note"].as_str().unwrap().contains("extractive"));
    }

    #[test]
    fn llm_summary_is_read_from_the_first_object() {
        let a = "Sure! {\"key_points\": [\"a\"], \"action_items\": [{\"text\": \"do x\", \"assignee\": \"\"}, \"do y\"], \"sentiment_overall\": \"positive\", \"tags\": [\"Budget Planning\"]} done";
        let s = parse_llm_summary(a, "ollama:m").unwrap();
        assert_eq!(s.key_points, vec!["a"]);
        assert_eq!(s.action_items[0], ActionItem { text: "do x".into(), assignee: "unassigned".into(), due_text: "no date".into() });
        assert_eq!(s.action_items[1].text, "do y");
        assert_eq!(s.sentiment_overall, "POSITIVE");
        assert_eq!(s.tags, vec!["budget_planning"]);
        assert_eq!(s.method, "llm");
        assert!(parse_llm_summary("no json here", "m").is_none());
    }

    #[test]
    fn note_hash_normalizes_line_ends_and_edges() {
        assert_eq!(note_hash(" a\r\nb \n"), note_hash("a\nb"));
        assert!(is_note_hash(&note_hash("x")));
        assert!(!is_note_hash("../etc"));
    }

    #[test]
    fn params_are_checked_as_the_original() {
        let base = |k: &str| -> Option<String> {
            match k {
                "start_time" => Some("2024-05-01T10:00:00Z".into()),
                "end_time" => Some("2024-05-01T10:30:00Z".into()),
                "note_type" => Some("MEETING".into()),
                "device_type" => Some("MAC".into()),
                "participant_display_names" => Some("[\"Alice\",\"Bob\"]".into()),
                _ => None,
            }
        };
        let p = NoteParams::parse(&base).unwrap();
        assert_eq!(p.duration_sec, 1800);
        assert_eq!(p.participants, vec!["Alice", "Bob"]);
        assert_eq!(p.chunking_strategy, "BY_TIME_30S");
        let swapped = |k: &str| match k {
            "start_time" => base("end_time"),
            "end_time" => base("start_time"),
            _ => base(k),
        };
        assert!(matches!(NoteParams::parse(&swapped), Err(NotesError::BadRequest(m)) if m.contains("before")));
        let bad_type = |k: &str| if k == "note_type" { Some("PARTY".into()) } else { base(k) };
        assert!(NoteParams::parse(&bad_type).is_err());
    }
}
