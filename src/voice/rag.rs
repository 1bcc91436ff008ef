//! ALFRED's retrieval: a question searches the node's own records (recipe,
//! exercise, workout, post) through the records query machinery, as an anonymous
//! caller (voice routes are public, so only public records are found); the top
//! records become the LLM's context and the answer's `sources`. With no LLM, the
//! answer is built from the records themselves ([`Found::extractive_answer`]), so
//! it is always true to the data.
//!
//! Bounds: search terms ([`MAX_TERMS`]), records per type and in the context
//! ([`MAX_RESULTS`]), bytes of one query's answer read ([`MAX_ANSWER_READ`]),
//! bytes of context ([`MAX_CONTEXT_BYTES`]).

use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::records::service::{Caller, RecordsService};
use crate::store::Viewer;

/// The record types ALFRED searches.
pub const RAG_TYPES: [&str; 4] = ["recipe", "exercise", "workout", "post"];
/// Bound: search terms taken from a question.
pub const MAX_TERMS: usize = 8;
/// Bound: records kept as context (the original's top 5).
pub const MAX_RESULTS: usize = 5;
/// Bound: bytes of one records answer read for the search.
pub const MAX_ANSWER_READ: usize = 4 * 1024 * 1024;
/// Bound: bytes of context handed to the LLM.
pub const MAX_CONTEXT_BYTES: usize = 8 * 1024;

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out", "has", "his", "how", "its", "may",
    "new", "now", "see", "who", "did", "get", "him", "let", "she", "too", "use", "what", "when", "where", "which", "with", "would", "could", "should",
    "about", "tell", "show", "give", "find", "some", "that", "this", "there", "their", "them", "then", "they", "have", "from", "your", "into", "make",
    "does", "want", "like", "know", "good", "best", "please", "recipe", "recipes", "exercise", "exercises", "workout", "workouts", "post", "posts",
    "me", "my", "do", "is", "it", "a", "an", "of", "to", "in", "on", "i", "be", "or", "as", "at", "by", "we", "us", "so", "if", "up", "any",
];

/// What a search found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// `{data, oip}` of the records kept, best first.
    pub records: Vec<Value>,
    pub terms: Vec<String>,
    pub types: Vec<String>,
}

/// Optional filters (the original's `creator_filter`, `record_type_filter`, `tag_filter`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub creator: Option<String>,
    pub record_type: Option<String>,
    pub tags: Option<String>,
    pub limit: Option<usize>,
}

/// The words of a question worth searching for.
pub fn terms(question: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in question.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.len() < 3 || STOPWORDS.contains(&w.as_str()) || out.contains(&w) {
            continue;
        }
        out.push(w);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// Which record types a question is about (keywords, as ALFRED's fallback heuristics).
pub fn types_for(question: &str) -> Vec<&'static str> {
    let q = question.to_lowercase();
    let has = |ws: &[&str]| ws.iter().any(|w| q.contains(w));
    let mut t = Vec::new();
    if has(&["recipe", "cook", "eat", "meal", "dish", "ingredient", "bowl", "food", "dinner", "lunch", "breakfast"]) {
        t.push("recipe");
    }
    if has(&["exercise", "muscle", "stretch", "squat", "press", "curl", "lift", "train"]) {
        t.push("exercise");
    }
    if has(&["workout", "routine", "session", "training"]) {
        t.push("workout");
    }
    if has(&["news", "article", "post", "story", "report"]) {
        t.push("post");
    }
    if t.is_empty() {
        t.extend(RAG_TYPES);
    }
    t
}

/// Search the records for `question`.
pub async fn search(records: &RecordsService, question: &str, f: &Filters) -> Found {
    let terms = terms(question);
    let types: Vec<String> = match &f.record_type {
        Some(t) if !t.trim().is_empty() => vec![t.trim().to_owned()],
        _ => types_for(question).into_iter().map(str::to_owned).collect(),
    };
    let limit = f.limit.unwrap_or(MAX_RESULTS).clamp(1, MAX_RESULTS);
    let mut found: Vec<(u64, Value)> = Vec::new();
    if terms.is_empty() {
        return Found { records: Vec::new(), terms, types };
    }
    for t in &types {
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("search", &terms.join(" "));
            q.append_pair("searchMatchMode", "OR");
            q.append_pair("recordType", t);
            q.append_pair("limit", &limit.to_string());
            q.append_pair("resolveDepth", "1");
            q.append_pair("resolveNamesOnly", "true");
            q.append_pair("sortBy", "matchCount:desc");
            if let Some(c) = f.creator.as_deref().filter(|s| !s.is_empty()) {
                q.append_pair("creatorHandle", c);
            }
            if let Some(tags) = f.tags.as_deref().filter(|s| !s.is_empty()) {
                q.append_pair("tags", tags);
            }
            q.finish()
        };
        let Ok(list) = records.parse_list(&query) else { continue };
        let caller = Caller { viewer: Viewer::anonymous(), auth: json!({"authenticated": false, "user": null}) };
        let body = match records.list(list, caller).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "voice RAG search failed");
                continue;
            }
        };
        let Ok(bytes) = http_body_util::Limited::new(body, MAX_ANSWER_READ).collect().await.map(|c| c.to_bytes()) else { continue };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else { continue };
        for r in v["records"].as_array().into_iter().flatten() {
            found.push((r["matchCount"].as_u64().unwrap_or(0), r.clone()));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.truncate(limit);
    Found { records: found.into_iter().map(|(_, r)| r).collect(), terms, types }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) { "an" } else { "a" }
}

fn name_of(r: &Value) -> String {
    r["data"]["basic"]["name"].as_str().unwrap_or("an untitled record").to_owned()
}

fn record_type(r: &Value) -> &str {
    r["oip"]["recordType"].as_str().unwrap_or("record")
}

/// A few key facts of a record, as a sentence.
fn facts(r: &Value) -> String {
    let d = &r["data"];
    let t = record_type(r);
    let s = &d[t];
    let mut parts: Vec<String> = Vec::new();
    let num = |k: &str| s[k].as_u64().or_else(|| s[k].as_f64().map(|f| f as u64));
    let list = |k: &str| -> Vec<String> { s[k].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).filter(|x| !x.starts_with("did:")).take(6).collect()).unwrap_or_default() };
    match t {
        "recipe" => {
            if let Some(c) = s["cuisine"].as_str() {
                parts.push(format!("{} {c} dish", article(c)));
            }
            if let Some(m) = num("total_time_mins") {
                parts.push(format!("ready in {m} minutes"));
            }
            if let Some(n) = num("servings") {
                parts.push(format!("serves {n}"));
            }
            let ing = list("ingredient");
            if !ing.is_empty() {
                parts.push(format!("with {}", ing.join(", ")));
            }
        }
        "exercise" => {
            let m = list("muscleGroups");
            if !m.is_empty() {
                parts.push(format!("works the {}", m.join(" and ")));
            }
            if let Some(x) = s["difficulty"].as_str() {
                parts.push(format!("{x} difficulty"));
            }
            if let (Some(sets), Some(reps)) = (num("recommended_sets"), num("recommended_reps")) {
                parts.push(format!("{sets} sets of {reps}"));
            }
        }
        "workout" => {
            if let Some(m) = num("total_duration_minutes") {
                parts.push(format!("{m} minutes"));
            }
            if let Some(c) = num("estimated_calories_burned") {
                parts.push(format!("about {c} calories"));
            }
            let ex = list("exercise");
            if !ex.is_empty() {
                parts.push(format!("including {}", ex.join(", ")));
            }
        }
        _ => {}
    }
    if parts.is_empty() {
        if let Some(desc) = d["basic"]["description"].as_str() {
            return desc.chars().take(200).collect();
        }
    }
    parts.join(", ")
}

impl Found {
    /// The context handed to the LLM: one block per record, bounded.
    pub fn context(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.records.iter().enumerate() {
            let block = format!(
                "[{}] {} ({}): {}. {}\n",
                i + 1,
                name_of(r),
                record_type(r),
                r["data"]["basic"]["description"].as_str().unwrap_or(""),
                facts(r)
            );
            if out.len() + block.len() > MAX_CONTEXT_BYTES {
                break;
            }
            out.push_str(&block);
        }
        out
    }

    /// The answer without an LLM: what was found, in sentences.
    pub fn extractive_answer(&self, question: &str) -> String {
        if self.records.is_empty() {
            let about = if self.terms.is_empty() { question.trim().to_owned() } else { self.terms.join(" ") };
            return format!("I could not find any records about {about} on this node. Try asking about a recipe, an exercise or a workout by name.");
        }
        let mut out = format!(
            "I found {} {} about {}. ",
            self.records.len(),
            if self.records.len() == 1 { "record" } else { "records" },
            self.terms.join(" ")
        );
        for r in &self.records {
            let f = facts(r);
            if f.is_empty() {
                out.push_str(&format!("{} is {} {}. ", name_of(r), article(record_type(r)), record_type(r)));
            } else {
                out.push_str(&format!("{} is {} {}: {}. ", name_of(r), article(record_type(r)), record_type(r), f));
            }
        }
        out.trim_end().to_owned()
    }

    /// `sources` as the original: `{title, type, did, description}`.
    pub fn sources(&self) -> Vec<Value> {
        self.records
            .iter()
            .map(|r| json!({"title": name_of(r), "type": record_type(r), "did": r["oip"]["did"], "description": r["data"]["basic"]["description"]}))
            .collect()
    }

    /// `search_results`: the records' names and DIDs (not whole records: they can be large).
    pub fn search_results(&self) -> Vec<Value> {
        self.records
            .iter()
            .map(|r| json!({"name": name_of(r), "recordType": record_type(r), "did": r["oip"]["did"], "matchCount": r["matchCount"]}))
            .collect()
    }

    pub fn applied_filters(&self) -> Value {
        json!({"search": self.terms.join(" "), "recordTypes": self.types})
    }
}

/// The RAG prompt: system instructions with the context, then the history and the question.
pub fn prompt(found: &Found, history: &[super::llm::Message], question: &str) -> Vec<super::llm::Message> {
    use super::llm::Message;
    let system = if found.records.is_empty() {
        "You are ALFRED, a concise voice assistant. No records matched the question; say so briefly and answer from general knowledge if you can. Answer in a few spoken sentences, no markdown.".to_owned()
    } else {
        format!(
            "You are ALFRED, a concise voice assistant for an OIP node. Answer from these records, naming them; if they do not answer the question, say so. Answer in a few spoken sentences, no markdown.\n\nRecords:\n{}",
            found.context()
        )
    };
    let mut m = vec![Message::new("system", system)];
    m.extend(history.iter().rev().take(8).rev().cloned());
    m.push(Message::new("user", question));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_types() {
        assert_eq!(terms("How do I make the Thai bowl recipe?"), vec!["thai", "bowl"]);
        assert_eq!(types_for("How do I make the Thai bowl recipe?"), vec!["recipe"]);
        assert_eq!(types_for("Tell me about squats"), vec!["exercise"]);
        assert_eq!(types_for("hello"), RAG_TYPES.to_vec());
        assert!(terms(&"word ".repeat(100)).len() <= MAX_TERMS);
    }

    #[test]
    fn extractive_answers_say_what_was_found() {
        let f = Found {
            records: vec![json!({"data": {"basic": {"name": "Thai Bowl 1", "description": "A Thai recipe."}, "recipe": {"cuisine": "Thai", "total_time_mins": 25, "servings": 2, "ingredient": ["rice", "basil"]}}, "oip": {"recordType": "recipe", "did": "did:x"}})],
            terms: vec!["thai".into()],
            types: vec!["recipe".into()],
        };
        let a = f.extractive_answer("thai?");
        assert_eq!(a, "I found 1 record about thai. Thai Bowl 1 is a recipe: a Thai dish, ready in 25 minutes, serves 2, with rice, basil.");
        assert!(Found::default().extractive_answer("zzz").starts_with("I could not find"));
    }
}
