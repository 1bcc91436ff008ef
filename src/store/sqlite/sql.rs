//! SQL building blocks: fragments with their positional parameters, and the
//! mapping of SQLite errors to [`StoreError`].

use rusqlite::types::Value as Sql;

use crate::store::StoreError;

pub fn backend<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    let code = (&e as &dyn std::any::Any)
        .downcast_ref::<rusqlite::Error>()
        .and_then(rusqlite::Error::sqlite_error_code);
    match code {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
        Some(rusqlite::ErrorCode::OperationInterrupted) => StoreError::Interrupted,
        _ => StoreError::Backend(e.to_string()),
    }
}

/// A piece of SQL with its positional parameters, in order.
#[derive(Default, Clone)]
pub struct Frag {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Frag {
    pub fn new(sql: impl Into<String>, params: Vec<Sql>) -> Self {
        Frag {
            sql: sql.into(),
            params,
        }
    }
    pub fn push(&mut self, other: Frag) {
        self.sql.push_str(&other.sql);
        self.params.extend(other.params);
    }
    pub fn join(parts: Vec<Frag>, sep: &str) -> Frag {
        let mut out = Frag::default();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                out.sql.push_str(sep);
            }
            out.push(p);
        }
        out
    }
    pub fn wrap(self) -> Frag {
        Frag {
            sql: format!("({})", self.sql),
            params: self.params,
        }
    }
}

pub fn text(s: &str) -> Sql {
    Sql::Text(s.to_owned())
}
