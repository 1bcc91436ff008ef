//! [`UserStore`] on PostgreSQL: the `users` table (id, lowercased email, the
//! document, its revision). Imports take a transaction-level advisory lock, so
//! two nodes importing at once do not interleave their read-then-write.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{pg_error, PgStore};
use crate::store::users::{email_key, Inserted, UserDoc, UserStore};
use crate::store::{StoreError, Upserted};

/// The advisory lock key user imports run under.
const USERS_LOCK: i64 = 0x6f69_7064_0002;

fn row(id: String, doc: String, rev: i64) -> Result<UserDoc, StoreError> {
    let doc: Map<String, Value> = serde_json::from_str(&doc).map_err(|e| StoreError::Backend(format!("user document: {e}")))?;
    Ok(UserDoc { id, doc, rev: rev as u64 })
}

fn text(u: &UserDoc) -> Result<String, StoreError> {
    serde_json::to_string(&u.doc).map_err(|e| StoreError::Backend(e.to_string()))
}

impl PgStore {
    async fn user_where(&self, sql: &str, key: &str) -> Result<Option<UserDoc>, StoreError> {
        let c = self.conn().await?;
        let r = c.query_opt(sql, &[&key]).await.map_err(pg_error)?;
        c.done();
        r.map(|r| row(r.get(0), r.get(1), r.get(2))).transpose()
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn insert_user(&self, user: UserDoc) -> Result<Inserted, StoreError> {
        let doc = text(&user)?;
        let c = self.conn().await?;
        let n = c
            .execute("INSERT INTO users (id, email_key, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", &[&user.id, &user.email_key(), &doc])
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(if n == 1 { Inserted::Created } else { Inserted::EmailTaken })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserDoc>, StoreError> {
        self.user_where("SELECT id, doc, rev FROM users WHERE email_key = $1", &email_key(email)).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserDoc>, StoreError> {
        self.user_where("SELECT id, doc, rev FROM users WHERE id = $1", id).await
    }

    async fn update_user(&self, user: &UserDoc) -> Result<bool, StoreError> {
        let (key, doc, rev) = (user.email_key(), text(user)?, user.rev as i64);
        let c = self.conn().await?;
        let n = c
            .execute("UPDATE users SET email_key = $2, doc = $3, rev = rev + 1 WHERE id = $1 AND rev = $4", &[&user.id, &key, &doc, &rev])
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(n == 1)
    }

    async fn list_users(&self, limit: u32, offset: u64) -> Result<(u64, Vec<UserDoc>), StoreError> {
        let c = self.conn().await?;
        let total: i64 = c.query_one("SELECT COUNT(*) FROM users", &[]).await.map_err(pg_error)?.get(0);
        let rows = c
            .query("SELECT id, doc, rev FROM users ORDER BY seq LIMIT $1 OFFSET $2", &[&(limit as i64), &(offset.min(i64::MAX as u64) as i64)])
            .await
            .map_err(pg_error)?;
        c.done();
        let users = rows.into_iter().map(|r| row(r.get(0), r.get(1), r.get(2))).collect::<Result<Vec<_>, _>>()?;
        Ok((total as u64, users))
    }

    async fn upsert_users(&self, users: Vec<UserDoc>) -> Result<Vec<Upserted>, StoreError> {
        let rows = users.iter().map(|u| Ok((u.id.clone(), u.email_key(), text(u)?))).collect::<Result<Vec<_>, StoreError>>()?;
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK]).await.map_err(pg_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, key, doc) in &rows {
            let existing = tx.query_opt("SELECT id, doc FROM users WHERE email_key = $1", &[key]).await.map_err(pg_error)?;
            let id_taken: bool = tx
                .query_one("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND email_key <> $2)", &[id, key])
                .await
                .map_err(pg_error)?
                .get(0);
            match existing.map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))) {
                _ if id_taken => out.push(Upserted::Refused),
                Some((i, d)) if &i == id && &d == doc => out.push(Upserted::Unchanged),
                Some(_) => {
                    tx.execute("UPDATE users SET id = $1, doc = $3, rev = rev + 1 WHERE email_key = $2", &[id, key, doc]).await.map_err(pg_error)?;
                    out.push(Upserted::Updated);
                }
                None => {
                    tx.execute("INSERT INTO users (id, email_key, doc) VALUES ($1, $2, $3)", &[id, key, doc]).await.map_err(pg_error)?;
                    out.push(Upserted::Inserted);
                }
            }
        }
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(out)
    }
}
