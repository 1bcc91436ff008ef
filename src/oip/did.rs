//! Identities in OIP: DIDs, GUN souls and who owns a record.
//!
//! A user's GUN soul prefix is `sha256hex(publicKey)[0..12]` (the original's
//! rule); a record is owned by the key named in its access control, its session
//! owner, its creator, or the user whose soul prefix its `did:gun:` DID carries.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256hex(key)[0..12]`: the GUN soul prefix of a user.
pub fn user_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..12].to_owned()
}

/// The reference's ownership rule for deletion.
pub fn owns(user_key: &str, did: &str, rec: &Value) -> bool {
    let at = |path: &[&str]| {
        let mut cur = rec;
        for p in path {
            match cur.get(p) {
                Some(v) => cur = v,
                None => return None,
            }
        }
        cur.as_str()
    };
    let keys = [
        at(&["data", "accessControl", "owner_public_key"]),
        at(&["data", "accessControl", "created_by"]),
        at(&["data", "conversationSession", "owner_public_key"]),
        at(&["oip", "creator", "publicKey"]),
    ];
    keys.iter().flatten().any(|k| *k == user_key)
        || did
            .strip_prefix("did:gun:")
            .is_some_and(|soul| soul.split(':').next() == Some(user_hash(user_key).as_str()))
}
