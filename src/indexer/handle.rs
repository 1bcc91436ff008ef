//! Creator (and organization) handles, computed exactly as the original does.
//!
//! Its job: `convertToCreatorHandle(txId, handle)` in the original's
//! `helpers/elasticsearch.js`:
//!
//! ```js
//! const decimalNumber = parseInt(txId.replace(/[^0-9a-fA-F]/g, ''), 16);
//! // k = 1, 2, …: `${handle}${decimalNumber.toString().substring(0, k)}`
//! // until no creator has that handle
//! ```
//!
//! so the suffix comes from the JavaScript string of a float: the txid's hex
//! characters (all of them, wherever they are: `eqUwpy6et2eg…` gives
//! `e6e2e7c50aBC6Ddf3A3`) read as one base-16 number, rounded to a double, and
//! printed the JavaScript way — often in exponent form (`6.814562224920465e+22`),
//! so the second character may be a `.`. A txid without hex characters gives
//! `NaN`, hence a suffix `N`.
//!
//! What the original actually stores: its uniqueness search
//! (`findCreatorsByHandle`) queries a top-level `creatorHandle` field that no
//! creator document has (they keep it under `data.` and `oip.creator.`), so it
//! never finds a clash and k is always 1: "Player" + "6…" = `Player6`.
//! [`creator_handle_as_original`] reproduces that; [`unique_handle`] is the
//! algorithm as written, for a store whose search works (the original's
//! organization handles, `convertToOrgHandle`, do search a real field).
//!
//! Its bounds: the suffix is at most the length of the number's string (at
//! most 25 characters); when every prefix is taken the original would loop
//! forever, here it is an error.

use super::js::{js_number_to_string, js_parse_int_hex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("the registration has no handle")]
    Empty,
    #[error("every handle from {0:?} is taken")]
    Exhausted(String),
}

/// The txid's hex characters, in order (`txId.replace(/[^0-9a-fA-F]/g, '')`).
pub fn hex_chars(txid: &str) -> String {
    txid.chars().filter(char::is_ascii_hexdigit).collect()
}

/// `String(parseInt(hexChars(txid), 16))`: the digits handles take their suffix from.
pub fn handle_digits(txid: &str) -> String {
    js_number_to_string(js_parse_int_hex(&hex_chars(txid)))
}

/// The handle with `k` characters of suffix (`substring(0, k)`: all of them
/// when k is longer).
pub fn handle_with_digits(txid: &str, handle: &str, k: usize) -> String {
    let digits = handle_digits(txid);
    // The digits are ASCII, so characters are bytes.
    format!("{handle}{}", &digits[..k.min(digits.len())])
}

/// The handle the original stores for a creator registration: the first
/// suffix character only (see the module docs).
pub fn creator_handle_as_original(txid: &str, handle: &str) -> Result<String, HandleError> {
    unique_handle(txid, handle, |_| false)
}

/// The shortest `handle + digits[..k]` (k ≥ 1) for which `is_taken` is false.
pub fn unique_handle(txid: &str, handle: &str, mut is_taken: impl FnMut(&str) -> bool) -> Result<String, HandleError> {
    if handle.is_empty() {
        return Err(HandleError::Empty);
    }
    let digits = handle_digits(txid);
    for k in 1..=digits.len() {
        let candidate = format!("{handle}{}", &digits[..k]);
        if !is_taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(HandleError::Exhausted(format!("{handle}{digits}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (txid, `String(parseInt(txid.replace(/[^0-9a-fA-F]/g, ''), 16))`), printed by
    /// Node.js v20.20.2 while this module was written. The first three are the
    /// creator registrations the original knows, then real template txids from
    /// its `config/templates.config.js` and documents, then random ids.
    const NODE_DIGITS: &[(&str, &str)] = &[
        ("eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y", "6.814562224920465e+22"),
        ("iZq_A50yy5YpHNZZfQ5E5Xres3fhMa-buPOlotxbEtU", "743198797428927400"),
        ("T6EQ_RLaAvUpCjeWkx6BYmQl57rkF_YHr9QH97_eG7Q", "7974413050645682000"),
        ("-9DirnjVO1FlbEW1lN8jITBESrTsQKEM_BoZ1ey_0mk", "707623562607768000"),
        ("SLsJ91-Z82rRBPkDrZlG87aIpbw6zOlmK96nh5uf6G4", "167762420365855720000"),
        ("u4B6d5ddggsotOiG86D-KPkeW23qQNdqaXo_ZcdI3k0", "2.226218397468229e+22"),
        ("6zmCRZ06E2XtvN84BEQE_g4laBJdoCzTfQURHD2YlC4", "8.162281327923245e+24"),
        ("ku1zNjA19b9zLXR-ujud2L36F61k7Vulj62cMNRwQTE", "481469089771586800000"),
        ("yXFy2izo1ALbAQOvl8qEQP2XpmMzZoUGXri72I-SKFY", "266196612949807"),
        ("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ_-x", "NaN"),
        ("0000000000000000000000000000000000000000001", "1"),
        ("-qbYvD_xZLahdiN5vUuVRXLX7UpXFLHajHs2M1uhgAc", "208552203002284"),
        ("04AR4kI_INhbtuelvlas3ev07uVdlVe5s17TYqZZSf4", "85658082147213570000"),
        ("54Ey2Dlxj3XPLCHEKxFmjFvTLElQCAR0FKnKVh0mtN4", "97866946078927620000"),
        ("0KSMd9gPIFvFuDlCdSp-_2mSNamBiQrEFwNMh1zDu3A", "15708516822677398000"),
        ("qcp18t1jkLqXX35eUze0yaYhmOxn_aHvFrVAfS4c4QE", "3.5695322157602665e+21"),
        ("CC9tI6FUWUKQCPRxNX162UVcfKiTEu-DpS5TlchTDng", "14742247602418276000"),
        ("e2w23zJSTpb0B7i9Usgi41i5VlhBej1TXMJb_fpXL8g", "4.171535917892235e+21"),
        ("MtIXEGHnoiVu2a9tk9tQNMl4t7XeaDhBHuVmad_tMd4", "1020796799714831900"),
    ];

    #[test]
    fn digits_match_node() {
        for (txid, node) in NODE_DIGITS {
            assert_eq!(handle_digits(txid), *node, "{txid}");
        }
        assert_eq!(hex_chars("eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y"), "e6e2e7c50aBC6Ddf3A3");
    }

    #[test]
    fn handles_of_the_real_registrations() {
        // The two bootstrap registrations ("Player", "Scribe"), and
        // `T6EQ_…`, whose stored handle `Librarian7` appears in the original's
        // docs/Organizations.md (an organization record's oip.creator).
        assert_eq!(creator_handle_as_original("eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y", "Player").unwrap(), "Player6");
        assert_eq!(creator_handle_as_original("iZq_A50yy5YpHNZZfQ5E5Xres3fhMa-buPOlotxbEtU", "Scribe").unwrap(), "Scribe7");
        assert_eq!(creator_handle_as_original("T6EQ_RLaAvUpCjeWkx6BYmQl57rkF_YHr9QH97_eG7Q", "Librarian").unwrap(), "Librarian7");
    }

    #[test]
    fn suffix_grows_until_unique() {
        let txid = "eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y";
        let taken = ["Player6", "Player6.", "Player6.8"];
        assert_eq!(unique_handle(txid, "Player", |h| taken.contains(&h)).unwrap(), "Player6.81");
        assert_eq!(handle_with_digits(txid, "Player", 3), "Player6.8");
        assert_eq!(handle_with_digits(txid, "Player", 99), "Player6.814562224920465e+22");
        assert_eq!(
            unique_handle(txid, "Player", |_| true),
            Err(HandleError::Exhausted("Player6.814562224920465e+22".into()))
        );
        assert_eq!(unique_handle(txid, "", |_| false), Err(HandleError::Empty));
        // no hex characters: NaN
        assert_eq!(creator_handle_as_original("ghijk", "x").unwrap(), "xN");
    }
}
