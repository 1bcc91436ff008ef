//! The media access rule, one definition for every route that serves stored media:
//! public → anyone; private and organization → the owner only (organizations do
//! not exist yet); an item with no owner is visible to nobody but as public. A
//! manifest's level is effective only when it says exactly `public`; a missing one
//! takes the configured default; anything unrecognised is private.

use super::manifest::{AccessLevel, Manifest};

/// Why a caller may not see an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Nobody signed in: the API answers 401.
    Anonymous,
    /// Signed in, but not the owner: the API answers as for a missing item.
    NotOwner,
}

/// The effective level of an item with this manifest (or none).
pub fn level(manifest: Option<&Manifest>, default: AccessLevel) -> AccessLevel {
    manifest.map_or(default, |m| m.access(default))
}

/// May the caller with key `viewer` (`None`: anonymous) see an item of `level`
/// owned by `owner`?
pub fn authorize(
    level: AccessLevel,
    owner: Option<&str>,
    viewer: Option<&str>,
) -> Result<(), Denied> {
    if level == AccessLevel::Public {
        return Ok(());
    }
    let Some(viewer) = viewer else {
        return Err(Denied::Anonymous);
    };
    match owner {
        Some(o) if o == viewer => Ok(()),
        _ => Err(Denied::NotOwner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        use AccessLevel::*;
        for lvl in [Private, Organization] {
            assert_eq!(authorize(lvl, Some("a"), None), Err(Denied::Anonymous));
            assert_eq!(authorize(lvl, Some("a"), Some("b")), Err(Denied::NotOwner));
            assert_eq!(authorize(lvl, Some("a"), Some("a")), Ok(()));
            assert_eq!(authorize(lvl, None, Some("a")), Err(Denied::NotOwner));
        }
        assert_eq!(authorize(Public, None, None), Ok(()));
        assert_eq!(level(None, Private), Private);
        assert_eq!(level(None, Public), Public);
    }
}
