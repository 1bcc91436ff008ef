//! SQL building blocks for PostgreSQL, and the mapping of driver errors to
//! [`StoreError`] ([`pg_error`]): fragments written with `?` placeholders
//! and their parameters in order ([`Frag`]), numbered and typed (`$n::text`,
//! `$n::int8`, `$n::float8`) only when the statement is finished ([`Frag::finish`]),
//! so fragments compose as the SQLite backend's do. No SQL text here contains a
//! literal `?` (jsonb's `?` operators are never used); JSON paths are embedded
//! only from validated segments.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::store::StoreError;

/// Map a driver error: unreachable or restarting database → [`StoreError::Busy`];
/// `statement_timeout` → [`StoreError::TimedOut`]; full disk → [`StoreError::Full`].
pub fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        if *code == SqlState::QUERY_CANCELED {
            return StoreError::TimedOut;
        }
        if *code == SqlState::DISK_FULL {
            return StoreError::Full;
        }
        let c = code.code();
        // connection exceptions, shutdown/crash, too many connections, serialization/deadlock
        if c.starts_with("08") || c.starts_with("57P") || c == "53300" || c == "40001" || c == "40P01" {
            return StoreError::Busy;
        }
    }
    if e.is_closed() || e.as_db_error().is_none() && std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) {
        return StoreError::Busy;
    }
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("postgres: {} ({})", db.message(), db.code().code())),
        None => StoreError::Backend(format!("postgres: {e}")),
    }
}

/// One parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Sql {
    Text(String),
    Int(i64),
    Real(f64),
}

impl ToSql for Sql {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            // PostgreSQL's text cannot hold NUL (it would refuse the whole query);
            // stored text has none either, so a NUL can match nothing but its absence
            Sql::Text(s) if s.contains('\0') => s.replace('\0', "").to_sql(ty, out),
            Sql::Text(s) => s.to_sql(ty, out),
            Sql::Int(i) => i.to_sql(ty, out),
            Sql::Real(f) => f.to_sql(ty, out),
        }
    }
    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty) || <f64 as ToSql>::accepts(ty)
    }
    to_sql_checked!();
}

pub fn text(s: &str) -> Sql {
    Sql::Text(s.to_owned())
}

/// A piece of SQL with its `?` parameters, in order.
#[derive(Default, Clone, Debug)]
pub struct Frag {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Frag {
    pub fn new(sql: impl Into<String>, params: Vec<Sql>) -> Self {
        Frag { sql: sql.into(), params }
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
        Frag { sql: format!("({})", self.sql), params: self.params }
    }

    /// The statement text with `$n::type` placeholders, and its parameters.
    pub fn finish(&self) -> (String, Vec<&(dyn ToSql + Sync)>) {
        let mut out = String::with_capacity(self.sql.len() + 8 * self.params.len());
        let mut n = 0;
        for ch in self.sql.chars() {
            if ch == '?' {
                let ty = match self.params.get(n) {
                    Some(Sql::Int(_)) => "int8",
                    Some(Sql::Real(_)) => "float8",
                    _ => "text",
                };
                n += 1;
                out.push_str(&format!("${n}::{ty}"));
            } else {
                out.push(ch);
            }
        }
        debug_assert_eq!(n, self.params.len(), "placeholders and parameters of {}", self.sql);
        (out, self.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_typed_in_order() {
        let mut f = Frag::new("a = ? AND ", vec![text("x")]);
        f.push(Frag::new("b >= ? AND c = ?", vec![Sql::Int(3), Sql::Real(1.5)]));
        let (sql, params) = f.finish();
        assert_eq!(sql, "a = $1::text AND b >= $2::int8 AND c = $3::float8");
        assert_eq!(params.len(), 3);
    }
}
