//! JWT authentication, as the original: `Authorization: Bearer <HS256 JWT>` signed
//! with `JWT_SECRET`; the caller's identity is the `publicKey` claim, else
//! `publisherPubKey`.
//!
//! Plain code: the HTTP extractors over it live in `api::extract`.
//! Unlike the original there is no fallback secret (`'your-secret-key'`): without
//! `JWT_SECRET` a random per-process secret is used, so no token validates.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims the original's tokens carry; others are kept in `extra`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_pub_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Present (true) only on admins' tokens, as the original's login omitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct User {
    pub claims: Claims,
}

impl User {
    /// The owner key used for access decisions (`publicKey`, else `publisherPubKey`).
    pub fn public_key(&self) -> Option<&str> {
        fn non_empty(k: &Option<String>) -> Option<&str> {
            k.as_deref().filter(|k| !k.is_empty())
        }
        non_empty(&self.claims.public_key).or_else(|| non_empty(&self.claims.publisher_pub_key))
    }

    /// A `scope: calendar-read-only` token (made for calendar subscription URLs):
    /// it may read the calendar record types and nothing else.
    pub fn is_calendar_only(&self) -> bool {
        self.claims.extra.get("scope").and_then(serde_json::Value::as_str) == Some("calendar-read-only")
    }
}

#[derive(Clone)]
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    /// Whether the secret was configured (false: random, nothing validates).
    pub configured: bool,
}

impl Auth {
    pub fn new(secret: Option<&str>) -> Self {
        let (secret, configured) = match secret {
            Some(s) if !s.is_empty() => (s.as_bytes().to_vec(), true),
            _ => (random_secret(), false),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // The original's jsonwebtoken.verify requires no claims; `exp` is checked
        // when present.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.leeway = 0;
        Auth {
            decoding: DecodingKey::from_secret(&secret),
            encoding: EncodingKey::from_secret(&secret),
            validation,
            configured,
        }
    }

    pub fn verify(&self, token: &str) -> Option<User> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| User { claims: d.claims })
    }

    /// Sign claims (the `oipd token` command and tests).
    pub fn mint(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }
}

fn random_secret() -> Vec<u8> {
    use std::hash::{BuildHasher, RandomState};
    (0..4u64)
        .flat_map(|i| RandomState::new().hash_one(i).to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rules() {
        let a = Auth::new(Some("s3cret"));
        let other = Auth::new(Some("other"));
        let claims = Claims { public_key: Some("pk".into()), ..Default::default() };
        let t = a.mint(&claims);
        assert_eq!(a.verify(&t).unwrap().public_key(), Some("pk"));
        assert!(other.verify(&t).is_none());
        assert!(a.verify("garbage").is_none());
        let expired = a.mint(&Claims { exp: Some(1000), ..claims.clone() });
        assert!(a.verify(&expired).is_none());
        let pubkey_only = a.mint(&Claims { publisher_pub_key: Some("pp".into()), ..Default::default() });
        assert_eq!(a.verify(&pubkey_only).unwrap().public_key(), Some("pp"));
        // an unconfigured node validates nothing signed elsewhere
        let unconfigured = Auth::new(None);
        assert!(!unconfigured.configured);
        assert!(unconfigured.verify(&t).is_none());
    }

    #[test]
    fn only_hs256_is_accepted() {
        // base64url without padding, enough for a test
        let b64 = |v: &str| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for c in v.as_bytes().chunks(3) {
                let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
                for i in 0..=c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        };
        let a = Auth::new(Some("s3cret"));
        let body = b64(r#"{"publicKey":"pk"}"#);
        // the encoder is right: rebuilt from its parts, a real token still verifies
        let real = a.mint(&Claims { public_key: Some("pk".into()), ..Default::default() });
        let sig0 = real.rsplit('.').next().unwrap();
        assert_eq!(format!("{}.{body}.{sig0}", b64(r#"{"typ":"JWT","alg":"HS256"}"#)), real);
        // alg none, with and without a signature part
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#, r#"{"alg":"HS512","typ":"JWT"}"#, r#"{"alg":"RS256"}"#] {
            let h = b64(header);
            assert!(a.verify(&format!("{h}.{body}.")).is_none(), "{header}");
            assert!(a.verify(&format!("{h}.{body}")).is_none(), "{header}");
            // an HS256 signature pasted onto another alg's header does not verify either
            let sig = a.mint(&Claims { public_key: Some("pk".into()), ..Default::default() });
            let sig = sig.rsplit('.').next().unwrap();
            assert!(a.verify(&format!("{h}.{body}.{sig}")).is_none(), "{header}");
        }
    }
}
