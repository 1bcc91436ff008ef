//! [`UserStore`] on SQLite: the `users` table (id, lowercased email, the document).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::conn::SqliteStore;
use super::sql::backend;
use crate::store::users::{email_key, Inserted, UserDoc, UserStore};
use crate::store::{StoreError, Upserted};

fn row(id: String, doc: String, rev: i64) -> Result<UserDoc, StoreError> {
    let doc: Map<String, Value> = serde_json::from_str(&doc).map_err(|e| StoreError::Backend(format!("user document: {e}")))?;
    Ok(UserDoc { id, doc, rev: rev as u64 })
}

fn text(u: &UserDoc) -> Result<String, StoreError> {
    serde_json::to_string(&u.doc).map_err(|e| StoreError::Backend(e.to_string()))
}

fn one(c: &Connection, sql: &str, key: &str) -> Result<Option<UserDoc>, StoreError> {
    let r: Option<(String, String, i64)> = c.query_row(sql, [key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional().map_err(backend)?;
    r.map(|(id, doc, rev)| row(id, doc, rev)).transpose()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: UserDoc) -> Result<Inserted, StoreError> {
        let doc = text(&user)?;
        self.write(move |c| {
            let n = c
                .execute("INSERT INTO users (id, email_key, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", [&user.id, &user.email_key(), &doc])
                .map_err(backend)?;
            Ok(if n == 1 { Inserted::Created } else { Inserted::EmailTaken })
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserDoc>, StoreError> {
        let key = email_key(email);
        self.read(move |c| one(c, "SELECT id, doc, rev FROM users WHERE email_key = ?", &key)).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserDoc>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| one(c, "SELECT id, doc, rev FROM users WHERE id = ?", &id)).await
    }

    async fn update_user(&self, user: &UserDoc) -> Result<bool, StoreError> {
        let (id, key, doc, rev) = (user.id.clone(), user.email_key(), text(user)?, user.rev as i64);
        self.write(move |c| {
            let n = c
                .execute("UPDATE users SET email_key = ?2, doc = ?3, rev = rev + 1 WHERE id = ?1 AND rev = ?4", rusqlite::params![id, key, doc, rev])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_users(&self, limit: u32, offset: u64) -> Result<(u64, Vec<UserDoc>), StoreError> {
        self.read(move |c| {
            let total: i64 = c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)).map_err(backend)?;
            let mut st = c.prepare("SELECT id, doc, rev FROM users ORDER BY rowid LIMIT ?1 OFFSET ?2").map_err(backend)?;
            let rows = st
                .query_map([limit as i64, offset.min(i64::MAX as u64) as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let users = rows.into_iter().map(|(id, doc, rev)| row(id, doc, rev)).collect::<Result<Vec<_>, _>>()?;
            Ok((total as u64, users))
        })
        .await
    }

    async fn upsert_users(&self, users: Vec<UserDoc>) -> Result<Vec<Upserted>, StoreError> {
        let rows = users.iter().map(|u| Ok((u.id.clone(), u.email_key(), text(u)?))).collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, key, doc) in &rows {
                let existing: Option<(String, String)> = tx
                    .query_row("SELECT id, doc FROM users WHERE email_key = ?", [key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(backend)?;
                let id_taken: bool = tx
                    .query_row("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND email_key <> ?2)", [id, key], |r| r.get(0))
                    .map_err(backend)?;
                match existing {
                    _ if id_taken => out.push(Upserted::Refused),
                    Some((i, d)) if &i == id && &d == doc => out.push(Upserted::Unchanged),
                    Some(_) => {
                        // the imported account replaces the row whole, its id included
                        tx.execute("UPDATE users SET id = ?1, doc = ?3, rev = rev + 1 WHERE email_key = ?2", [id, key, doc]).map_err(backend)?;
                        out.push(Upserted::Updated);
                    }
                    None => {
                        tx.execute("INSERT INTO users (id, email_key, doc) VALUES (?1, ?2, ?3)", [id, key, doc]).map_err(backend)?;
                        out.push(Upserted::Inserted);
                    }
                }
            }
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
    }
}
