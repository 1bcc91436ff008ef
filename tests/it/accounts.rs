//! Accounts end to end over HTTP, as the original's pages use them: register →
//! login → a private record → the mnemonic → import-wallet on a fresh node gives
//! the same key; the original's users export logs in with its old password and
//! keys; brute force gets 429 while a correct login from another address works;
//! admin routes refuse non-admins; password resets keep (or knowingly lose) the
//! keys; calendar tokens read the calendar and stop when revoked.

use std::net::{IpAddr, Ipv4Addr};

use crate::common::*;
use serde_json::{json, Value};

const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
/// The original's keys for ABANDON (its bip32/tiny-secp256k1 at m/44'/0'/0'/0/0).
const ABANDON_PUBLIC_KEY: &str = "03aaeb52dd7494c361049de67cc680e83ebcbbbdbeb13637d92cd845f70308af5e";

/// A client whose connections come from `ip` (any 127.x address reaches the server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::from(ip))).build().unwrap()
}

async fn post(c: &reqwest::Client, t: &TestServer, path: &str, token: Option<&str>, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut r = c.post(t.url(path)).json(&body);
    if let Some(tok) = token {
        r = r.bearer_auth(tok);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

/// The claims of a JWT (unverified: the server verified it).
fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn register(t: &TestServer, email: &str, password: &str) -> Value {
    let (s, v, _) = post(&reqwest::Client::new(), t, "/api/user/register", None, json!({"email": email, "password": password})).await;
    assert_eq!(s, 201, "{v}");
    v
}

#[tokio::test]
async fn register_login_private_record_mnemonic_and_import_on_a_fresh_node() {
    let t = TestServer::start().await;
    let c = reqwest::Client::new();
    let reg = register(&t, "Alice@Example.com", "correct horse").await;
    assert_eq!((reg["success"].clone(), reg["message"].clone()), (json!(true), json!("User registered successfully")));
    let public_key = reg["publicKey"].as_str().unwrap().to_owned();
    assert!(public_key.len() == 66 && (public_key.starts_with("02") || public_key.starts_with("03")), "{public_key}");
    let words = reg["mnemonic"].as_str().unwrap().to_owned();
    assert_eq!(words.split(' ').count(), 12);
    let cl = claims(reg["token"].as_str().unwrap());
    assert_eq!(cl["email"], "Alice@Example.com");
    assert_eq!(cl["publicKey"], public_key.as_str());
    assert_eq!(cl["isAdmin"], false);
    let ttl = cl["exp"].as_u64().unwrap() - cl["iat"].as_u64().unwrap();
    assert_eq!(ttl, 45 * 86_400);
    // the same email again (any case) is refused
    let (s, v, _) = post(&c, &t, "/api/user/register", None, json!({"email": "alice@example.COM", "password": "another one"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("User is already registered.")));
    let (s, _, _) = post(&c, &t, "/api/user/register", None, json!({"email": "bob@example.com", "password": "short"})).await;
    assert_eq!(s, 400, "passwords have a minimum length");

    // login
    let (s, v, h) = post(&c, &t, "/api/user/login", None, json!({"email": "alice@example.com", "password": "correct horse"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["publicKey"], public_key.as_str());
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(claims(&token).get("isAdmin").is_none(), "the original's login leaves isAdmin out for users");

    // a private record, readable by its owner only
    let (s, rec) = t
        .post_json("/api/records/newRecord?recordType=note&storage=gun&localId=n1", Some(&token), &json!({"basic": {"name": "Alice's note"}, "note": {"text": "hi"}}))
        .await;
    assert_eq!(s, 200, "{rec}");
    let (_, mine) = t.get_json("/api/records?source=gun&recordType=note", Some(&token)).await;
    assert_eq!(mine["searchResults"], 1);
    let (_, anon) = t.get_json("/api/records?source=gun&recordType=note", None).await;
    assert_eq!(anon["searchResults"], 0);

    // the mnemonic, for the password (the original's GET form, and POST)
    let r = c.get(t.url("/api/user/mnemonic?password=correct%20horse")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["mnemonic"], words.as_str());
    let (s, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&token), json!({"password": "correct horse"})).await;
    assert_eq!((s, v["mnemonic"].as_str()), (200, Some(words.as_str())));
    let (s, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&token), json!({"password": "wrong"})).await;
    assert_eq!((s, v["success"].clone()), (401, json!(false)));
    let r = c.get(t.url("/api/user/mnemonic?password=x")).send().await.unwrap();
    assert_eq!(r.status(), 401, "a token is required");

    // a fresh node: the words give the same key, so the same records are theirs
    let fresh = TestServer::start().await;
    let (s, v, _) = post(&c, &fresh, "/api/user/import-wallet", None, json!({"email": "alice@example.com", "password": "new node pass", "mnemonic": words})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["publicKey"], public_key.as_str());
    assert_eq!(claims(v["token"].as_str().unwrap())["publicKey"], public_key.as_str());
    // and the original's own vector
    let (s, v, _) = post(&c, &fresh, "/api/user/import-wallet", None, json!({"email": "abandon@example.com", "password": "abandon pass", "mnemonic": ABANDON})).await;
    assert_eq!((s, v["publicKey"].as_str()), (201, Some(ABANDON_PUBLIC_KEY)));
    for (body, want) in [
        (json!({"email": "x@example.com", "password": "long enough"}), "Email, password, and mnemonic are required"),
        (json!({"email": "x@example.com", "password": "long enough", "mnemonic": "abandon abandon abandon"}), "Invalid mnemonic phrase"),
        (json!({"email": "x@example.com", "password": "long enough", "mnemonic": ABANDON.replace("about", "abandon")}), "Invalid mnemonic phrase"),
    ] {
        let (s, v, _) = post(&c, &fresh, "/api/user/import-wallet", None, body).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(want)));
    }
    // an existing account with someone else's mnemonic: refused
    let (s, v, _) = post(&c, &fresh, "/api/user/import-wallet", None, json!({"email": "alice@example.com", "password": "new node pass", "mnemonic": ABANDON})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("User already exists on this node")));
}

#[tokio::test]
async fn failed_logins_reveal_nothing_and_brute_force_gets_429_but_not_the_owner() {
    let t = TestServer::start().await;
    register(&t, "carol@example.com", "carol's password").await;
    let attacker = client_from([127, 0, 0, 1]);
    // unknown email and wrong password: the same answer
    let (s1, v1, _) = post(&attacker, &t, "/api/user/login", None, json!({"email": "nobody@example.com", "password": "carol's password"})).await;
    let (s2, v2, _) = post(&attacker, &t, "/api/user/login", None, json!({"email": "carol@example.com", "password": "guess 1"})).await;
    assert_eq!((s1, &v1), (s2, &v2));
    assert_eq!((s1, v1["success"].clone(), v1["error"].as_str()), (401, json!(false), Some("Invalid email or password")));
    // keep guessing from one address: 429 with Retry-After, even for the right password now
    let mut limited = None;
    for i in 2..20 {
        let (s, v, h) = post(&attacker, &t, "/api/user/login", None, json!({"email": "carol@example.com", "password": format!("guess {i}")})).await;
        if s == 429 {
            limited = Some((v, h));
            break;
        }
        assert_eq!(s, 401);
    }
    let (v, h) = limited.expect("the address is limited");
    assert_eq!(v["success"], false);
    assert!(h.get("retry-after").unwrap().to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let (s, _, _) = post(&attacker, &t, "/api/user/login", None, json!({"email": "carol@example.com", "password": "carol's password"})).await;
    assert_eq!(s, 429, "the limited address stays limited");
    // the owner, from another address, signs in
    let owner = client_from([127, 0, 0, 2]);
    let (s, v, _) = post(&owner, &t, "/api/user/login", None, json!({"email": "carol@example.com", "password": "carol's password"})).await;
    assert_eq!(s, 200, "{v}");
    // the limiter's bounds are listed with their fill
    assert!(t.bound("login_addresses").await.1 >= 1);
    assert_eq!(t.bound("password_hashing").await.0, 2);
}

#[tokio::test]
async fn admin_routes_need_an_admin() {
    let t = TestServer::start_with(|c| c.auth.admin_token = Some("operator-secret".into())).await;
    let c = reqwest::Client::new();
    let user = register(&t, "user@example.com", "user password").await;
    let admin = register(&t, "admin@example.com", "admin password").await;
    let user_tok = user["token"].as_str().unwrap().to_owned();
    // anonymous, a plain user, a forged token: refused
    assert_eq!(c.get(t.url("/api/user/admin/users")).send().await.unwrap().status(), 401);
    let r = c.get(t.url("/api/user/admin/users")).bearer_auth(&user_tok).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Unauthorized access");
    let forged = oipd::auth::Auth::new(Some("other")).mint(&oipd::auth::Claims { user_id: Some(claims(admin["token"].as_str().unwrap())["userId"].as_str().unwrap().into()), ..Default::default() });
    assert_eq!(c.get(t.url("/api/user/admin/users")).bearer_auth(&forged).send().await.unwrap().status(), 403);
    let (s, _, _) = post(&c, &t, "/api/user/admin/update-status", Some(&user_tok), json!({"userId": "x", "field": "subscriptionStatus"})).await;
    assert_eq!(s, 403);
    // a token claiming isAdmin is not enough: the account must be one
    let claiming = oipd::auth::Auth::new(Some(SECRET)).mint(&oipd::auth::Claims { user_id: claims(&user_tok)["userId"].as_str().map(str::to_owned), is_admin: Some(true), ..Default::default() });
    assert_eq!(c.get(t.url("/api/user/admin/users")).bearer_auth(&claiming).send().await.unwrap().status(), 403);

    // make the second account an admin (what `oipd admin --email` does)
    let users = &t.server.state.stores.users;
    let mut a = users.user_by_email("admin@example.com").await.unwrap().unwrap();
    a.set("isAdmin", true);
    users.update_user(&a).await.unwrap();
    let (_, v, _) = post(&c, &t, "/api/user/login", None, json!({"email": "admin@example.com", "password": "admin password"})).await;
    let admin_tok = v["token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&admin_tok)["isAdmin"], true);
    let v: Value = c.get(t.url("/api/user/admin/users")).bearer_auth(&admin_tok).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], true);
    let listed = v["users"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let u = listed.iter().find(|u| u["email"] == "user@example.com").unwrap();
    assert_eq!((u["subscriptionStatus"].as_str(), u["isAdmin"].as_bool()), (Some("inactive"), Some(false)));
    assert!(u.get("passwordHash").is_none() && u.get("encryptedMnemonic").is_none(), "no secrets listed");
    let (s, _, _) = post(&c, &t, "/api/user/admin/update-status", Some(&admin_tok), json!({"userId": u["userId"], "field": "subscriptionStatus"})).await;
    assert_eq!(s, 200);
    let (s, v, _) = post(&c, &t, "/api/user/admin/update-status", Some(&admin_tok), json!({"userId": u["userId"], "field": "isAdmin"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Invalid field")));
    let v: Value = c.get(t.url("/api/user/admin/users")).bearer_auth(&admin_tok).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["users"].as_array().unwrap().iter().find(|u| u["email"] == "user@example.com").unwrap()["subscriptionStatus"], "active");
    // the operator's admin token works too
    assert_eq!(c.get(t.url("/api/user/admin/users")).bearer_auth("operator-secret").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn password_resets_keep_or_knowingly_lose_the_keys() {
    let t = TestServer::start_with(|c| c.auth.admin_token = Some("operator-secret".into())).await;
    let c = reqwest::Client::new();
    let reg = register(&t, "dave@example.com", "first password").await;
    let words = reg["mnemonic"].as_str().unwrap().to_owned();
    let tok = reg["token"].as_str().unwrap().to_owned();
    // not open to anyone (the original's was)
    let (s, _, _) = post(&c, &t, "/api/user/reset-password", None, json!({"email": "dave@example.com", "newPassword": "taken over!"})).await;
    assert_eq!(s, 401);
    // by the account itself: the current password is needed, and the keys move to the new one
    let (s, _, _) = post(&c, &t, "/api/user/reset-password", Some(&tok), json!({"currentPassword": "wrong one", "newPassword": "second password"})).await;
    assert_eq!(s, 401);
    let (s, v, _) = post(&c, &t, "/api/user/reset-password", Some(&tok), json!({"currentPassword": "first password", "newPassword": "second password"})).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("Password reset successful")));
    let (s, _, _) = post(&c, &t, "/api/user/login", None, json!({"email": "dave@example.com", "password": "first password"})).await;
    assert_eq!(s, 401);
    let (_, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&tok), json!({"password": "second password"})).await;
    assert_eq!(v["mnemonic"], words.as_str(), "the keys followed the password");
    // by an administrator: the new password works, the keys sealed under the old one cannot open...
    let (s, _, _) = post(&c, &t, "/api/user/reset-password", Some("operator-secret"), json!({"email": "dave@example.com", "newPassword": "third password"})).await;
    assert_eq!(s, 200);
    let (s, v, _) = post(&c, &t, "/api/user/login", None, json!({"email": "dave@example.com", "password": "third password"})).await;
    assert_eq!(s, 200, "{v}");
    let tok = v["token"].as_str().unwrap().to_owned();
    let (s, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&tok), json!({"password": "third password"})).await;
    assert_eq!(s, 409, "{v}");
    // ...until the user brings their words: the keys are sealed again
    let (s, v, _) = post(&c, &t, "/api/user/import-wallet", None, json!({"email": "dave@example.com", "password": "third password", "mnemonic": words})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&tok), json!({"password": "third password"})).await;
    assert_eq!(v["mnemonic"], words.as_str());
}

#[tokio::test]
async fn calendar_tokens_read_the_calendar_until_revoked() {
    let t = TestServer::start().await;
    let c = reqwest::Client::new();
    let reg = register(&t, "erin@example.com", "erin password").await;
    let tok = reg["token"].as_str().unwrap().to_owned();
    let (s, _) = t.post_json("/api/records/newRecord?recordType=mealPlan&storage=gun&localId=m1", Some(&tok), &json!({"basic": {"name": "Erin's plan"}, "mealPlan": {"meal_date": 1713783811}})).await;
    assert_eq!(s, 200);
    let (s, v, _) = post(&c, &t, "/api/user/generate-calendar-jwt", Some(&tok), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expiresIn"], 31_536_000);
    let cal = v["calendarJWT"].as_str().unwrap().to_owned();
    let cl = claims(&cal);
    assert_eq!((cl["scope"].as_str(), cl["tokenType"].as_str()), (Some("calendar-read-only"), Some("calendar")));
    let (_, seen) = t.get_json("/api/records?recordType=mealPlan", Some(&cal)).await;
    assert_eq!(seen["searchResults"], 1, "the calendar token reads its owner's plan");
    // read-only, and no account actions with it
    let (s, _) = t.post_json("/api/records/newRecord?recordType=mealPlan&storage=gun", Some(&cal), &json!({"basic": {}})).await;
    assert_eq!(s, 403);
    let (s, _, _) = post(&c, &t, "/api/user/generate-calendar-jwt", Some(&cal), json!({})).await;
    assert_eq!(s, 403);
    // a new token replaces the old one; revoking ends the new one
    let (_, v, _) = post(&c, &t, "/api/user/generate-calendar-token", Some(&tok), json!({})).await;
    assert_eq!(v["scope"], "calendar-read-only");
    let cal2 = v["calendarJWT"].as_str().unwrap().to_owned();
    let (_, seen) = t.get_json("/api/records?recordType=mealPlan", Some(&cal)).await;
    assert_eq!(seen["searchResults"], 0, "the replaced token reads nothing private");
    let (_, seen) = t.get_json("/api/records?recordType=mealPlan", Some(&cal2)).await;
    assert_eq!(seen["searchResults"], 1);
    let (s, _, _) = post(&c, &t, "/api/user/revoke-calendar-jwt", Some(&tok), json!({})).await;
    assert_eq!(s, 200);
    let (_, seen) = t.get_json("/api/records?recordType=mealPlan", Some(&cal2)).await;
    assert_eq!(seen["searchResults"], 0, "revocation holds");
    let r = c.get(t.url("/api/user/mnemonic?password=x")).bearer_auth(&cal2).send().await.unwrap();
    assert_eq!(r.status(), 403, "a revoked token is no token");
}

#[tokio::test]
async fn the_originals_users_export_logs_in_with_old_passwords_and_keys() {
    let t = TestServer::start().await;
    let c = reqwest::Client::new();
    // a user document as the original's `users` index held it (elasticdump line),
    // with its bcrypt hash and keys sealed the original's way, password "hunter2"
    let line = json!({"_index": "users", "_id": "kXq2-4oBYxk0Lrz8Qe7U", "_source": {
        "email": "Legacy@Example.com",
        "passwordHash": "$2a$10$W57CWQ2ryxYMvlj7OLhIfuQh2LEachLltPFuxRH8zhMyt4jdpZqzG",
        "publicKey": ABANDON_PUBLIC_KEY,
        "encryptedPrivateKey": r#"{"encrypted":"rm7MYOM3YhH07FYsPrZHj/uXLsCh3udD2VZVwgzm/7zPo88I21mLcVe2LfQtt9YPACxrC7dHH5ktqi0fmY2DMQ==","iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#,
        "encryptedMnemonic": r#"{"encrypted":"h0oO+gMAXFWmCFdSrFjsU1mboUiRWqQUP/PeH24xPkkjEQubYSzgBiuFmkoHFVkwj315Ac6mpaASQtVpGYsJYQqQceR1xB8VngIDP1uLiXgq7WfLNFtv3KXMkUhP","iv":"AAECAwQFBgcICQoL","authTag":"BhDJAcrMAEjYf0JIxiYDuw=="}"#,
        "encryptedGunSalt": r#"{"encrypted":"hfp4tFkpK9zaJAKohCr9Y4mcqwZ7mjYiPdpxHyi1rtmfk6mcLKT3rkx62GEZ4bk0D0CaltyGpran6zdHokICKA==","iv":"AAECAwQFBgcICQoL","authTag":"xmkWK+p4xtuE6WfYb38L8A=="}"#,
        "keyDerivationPath": "m/44'/0'/0'/0/0", "createdAt": "2024-05-01T10:00:00.000Z",
        "waitlistStatus": "registered", "subscriptionStatus": "inactive", "paymentMethod": null
    }});
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("users.ndjson");
    std::fs::write(&f, format!("{line}\n")).unwrap();
    let stores = t.server.state.stores.clone();
    let summary = tokio::task::spawn_blocking(move || oipd::records::import::import_files(&stores, &tokio::runtime::Handle::current(), &[f], false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.users, summary.skipped), (1, 0));

    let (s, v, _) = post(&c, &t, "/api/user/login", None, json!({"email": "legacy@example.com", "password": "hunter2"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["publicKey"], ABANDON_PUBLIC_KEY, "the same key, so their records and GUN souls stay theirs");
    let tok = v["token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&tok)["userId"], "kXq2-4oBYxk0Lrz8Qe7U", "the original's userId is kept");
    let (s, v, _) = post(&c, &t, "/api/user/mnemonic", Some(&tok), json!({"password": "hunter2"})).await;
    assert_eq!((s, v["mnemonic"].as_str()), (200, Some(ABANDON)));
    // the login upgraded what it could with the password: a stronger hash, per-user sealing
    let u = t.server.state.stores.users.user_by_email("legacy@example.com").await.unwrap().unwrap();
    assert!(u.str("passwordHash").unwrap().starts_with("$argon2id$"));
    for k in ["encryptedPrivateKey", "encryptedMnemonic", "encryptedGunSalt"] {
        assert!(u.str(k).unwrap().contains("\"v\":2"), "{k} re-sealed");
    }
    // and it still signs in
    let (s, _, _) = post(&c, &t, "/api/user/login", None, json!({"email": "legacy@example.com", "password": "hunter2"})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_not_everyone() {
    let t = TestServer::start_with(|c| c.http.trusted_proxies = "127.0.0.1".into()).await;
    register(&t, "frank@example.com", "frank password").await;
    let c = reqwest::Client::new();
    let login = |xff: &'static str, pw: &'static str| {
        let c = c.clone();
        let url = t.url("/api/user/login");
        async move {
            c.post(url).header("x-forwarded-for", xff).json(&json!({"email": "frank@example.com", "password": pw})).send().await.unwrap().status().as_u16()
        }
    };
    let mut limited = false;
    for _ in 0..10 {
        // a client may prepend anything; the proxy's own entry is the rightmost
        if login("6.6.6.6, 203.0.113.9", "wrong").await == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the forwarded attacker is limited");
    assert_eq!(login("198.51.100.7", "frank password").await, 200, "another client behind the same proxy signs in");
    // without the setting, X-Forwarded-For is not believed
    let plain = TestServer::start().await;
    register(&plain, "gina@example.com", "gina password").await;
    for i in 0..8 {
        let r = c.post(plain.url("/api/user/login")).header("x-forwarded-for", format!("10.0.0.{i}")).json(&json!({"email": "gina@example.com", "password": "no"})).send().await.unwrap();
        if r.status() == 429 {
            return; // one socket address: limited despite the changing header
        }
    }
    panic!("X-Forwarded-For from an untrusted peer changed the limited address");
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let t = TestServer::start().await;
    let c = client_from([127, 0, 0, 3]);
    let mut statuses = Vec::new();
    for i in 0..14 {
        let (s, _, _) = post(&c, &t, "/api/user/register", None, json!({"email": format!("bulk{i}@example.com"), "password": "bulk password"})).await;
        statuses.push(s);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    // the registration limiter's maps are listed with their fill, like every bound
    assert!(t.bound("registration_addresses").await.1 >= 1);
    assert_eq!(*statuses.last().unwrap(), 429);
    let (s, _, _) = post(&client_from([127, 0, 0, 4]), &t, "/api/user/register", None, json!({"email": "other@example.com", "password": "other password"})).await;
    assert_eq!(s, 201, "another address registers");
}

#[tokio::test]
async fn an_imported_account_cannot_be_taken_over_by_an_earlier_registration() {
    let t = TestServer::start().await;
    let c = reqwest::Client::new();
    // someone registers the victim's email before the operator imports the export
    let squatter = register(&t, "victim@example.com", "squatter password").await;
    let squatter_tok = squatter["token"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("users.ndjson");
    let victim = json!({"_index": "users", "_id": "victimId00000000000", "_source": {"email": "victim@example.com", "passwordHash": "$2a$10$W57CWQ2ryxYMvlj7OLhIfuQh2LEachLltPFuxRH8zhMyt4jdpZqzG", "publicKey": ABANDON_PUBLIC_KEY, "isAdmin": true}});
    // and an export row whose id is already another account's
    let bystander = register(&t, "bystander@example.com", "bystander password").await;
    let other_id = claims(bystander["token"].as_str().unwrap())["userId"].as_str().unwrap().to_owned();
    let clash = json!({"_index": "users", "_id": other_id, "_source": {"email": "someone@example.com", "passwordHash": "$2a$10$W57CWQ2ryxYMvlj7OLhIfuQh2LEachLltPFuxRH8zhMyt4jdpZqzG"}});
    std::fs::write(&f, format!("{victim}\n{clash}\n")).unwrap();
    let stores = t.server.state.stores.clone();
    let summary = tokio::task::spawn_blocking(move || oipd::records::import::import_files(&stores, &tokio::runtime::Handle::current(), &[f], false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.users, summary.skipped), (1, 1), "{summary}");
    // the squatter's token no longer acts on the account now holding the victim's data
    let r = c.get(t.url("/api/user/admin/users")).bearer_auth(&squatter_tok).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let (s, _, _) = post(&c, &t, "/api/user/generate-calendar-jwt", Some(&squatter_tok), json!({})).await;
    assert_eq!(s, 404);
    // the victim signs in with their old password and their old id
    let (s, v, _) = post(&c, &t, "/api/user/login", None, json!({"email": "victim@example.com", "password": "hunter2"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["token"].as_str().unwrap())["userId"], "victimId00000000000");
    // the bystander's account is untouched by the clashing row
    let (s, _, _) = post(&c, &t, "/api/user/login", None, json!({"email": "bystander@example.com", "password": "bystander password"})).await;
    assert_eq!(s, 200);
    assert!(t.server.state.stores.users.user_by_email("someone@example.com").await.unwrap().is_none());
}
