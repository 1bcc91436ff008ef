//! Reference vectors for the `arweave` tests, produced by the reference
//! implementations themselves: arbundles 0.11.2 and arweave-js (`arweave` 1.15.7), run
//! under Node v20.20.2. A scratch Node script (kept out of the repository) computed
//! deep-hashes with both libraries (they agree; the 100,000-byte blob also through
//! arbundles' streamed path), generated the RSA-4096 test key below with
//! `crypto.generateKeyPairSync("rsa", {modulusLength: 4096, publicExponent: 65537})`
//! exported as a JWK, and made two data items with `createData` signed by
//! `ArweaveSigner` (checked with `DataItem.isValid()`), printing their raw bytes,
//! ids, signed deep-hashes and tag bytes.
//!
//! The JWK is a throwaway test key: it holds nothing and must never be used for
//! anything but these tests.

use super::tags::Tag;

/// The test wallet (RSA-4096, e = 65537), as Node exported it.
pub const JWK: &str = r#"{
  "kty": "RSA",
  "n": "zHrii5AokTQ_Qxt-55YEByQJIAZJeiQboy3rRceov8XSyIGnhIzkl3g2bMFLUP7UbqQCG7xjemI2SgMhimtT4Nv7Du9rp0imnd9OjbNK0OrCuIGuqfh9lLxOlIHyj_X-K9lBEJTx5YcDqPTOQikcMDD1yNToZPZOdTMpSQoMzPHZf2hNw_jnB0IkGp4tdSZANYOUukWdQHOFsGof6BlqujfBmC0x3eWsT1EhJvFfp3OlneFujGEhgZMCXSxPh7VBvhsMnTL9fXume1_rxukxz-4RLg1RtC0G5nerv5ZiCWNjdqjbmGUvjXuUxe4eHQez9ysCXtGf6_GwvJo8bfK73PDRbkhgdVkmeHWyawrwXS95SCrv1eQCaVJqLLyOW2MISB8lHtYml5OxvmZGeyWnfPAoUa0jpPT2luDC3kR8usKqd_24vKaVFK6PjN9BEMS5Dl0ZMhaoSyJy05GzIucr1YC4ZhuHR65NGNRc1ZETkGlkwYdRCaGfhJ1zjYmd_LQ6ppgDjWOhLKWqCC2jq2QUhhuXzGlANqM9WhqF5KA0hjqm_3F090X44VUAzrCPpewtFE4XDNULR_cPVTLPBz5h8BUMsulZhxJMg_X7IIoREod7JxcUuvefDGZGwkMJlw_A1phQQueH7YJInH15Dr74efHocX1x9P8PQJQ5oWKPCPc",
  "e": "AQAB",
  "d": "OMI9gy7rS878ZnTJ55-5E4BZthV4rNo7_7Id1ftDaKQRS83NgZoYU8EvHkYTUXLC5clJuogy9sQvPKEc3M7I9CgryqwDrmYYtcbIB8ZGVLJthYidwplyxmf0yf0-Jt7KBELkcCVf9e3hwrLdU_kUVX4po2sR7QB_q8GdSqRrBDJ3xIlf2K-M9XNTET5p8NRCy3fwPzpWmY7Xg64ZmDQB75nNd5_H8Uew6j1jXetvOUx9ItNx-650fgKgC9viYZGbI5lfiX0fZwb9Ic7w5ABT7tsu0qEo1kIPYcbDGkW0hdWcRNI_TlB8ACJXHA_qNPWv60J5gHdglD486EVJ090mbwDduXf-7Dh71C0iv-6Q2MhOTMI8pXpLgHg6y-U9fVNctnTterSEaSzFFiyCiGNAzIpQPMXeBo3i8yMJ9tlz7z6GsLURSnKHtmDj3ars44Db8peEQjRQ1I4_QvRNoCjXKOukN3iL4JWlAU8ND-UcGvCCHYZKD9C4MhFx0QU5J8FnFGeHUtTaEoflAfFrFfqAwhIB0kGqawO3leKmTI2MgubE5-gEXWhntJiTyRIAdTiGjk-eityxS4d0VgjE8QCrIrs-6bJL1Etal0qiizOwTQrP8bT847ubAHhXfCZpAW7p3XLg-IftQXLX0a66SO5f0C_giR743o4FIC422zIQu00",
  "p": "9mdN453F4F3VoXaxhQYzxXtobGas0KU_gvZMDF1io_xm9rGt8CJFVWjbeMZhaKfvX42l-DTzQMMcI42MUsYfN-GNxrjgTgJabjwgPvgJ8kBD88SNbwhm604i4ZgRwG7T7f5ijQv_Kl_9K0TCe-5-Tvd0XZFD7yW2FtZgMqQWKshZY0ytPRnE7nW08fHtdMAefBMT9QZo0GK5x2QZ1HRSX6v0NeVaIc8xOAQ3uH8WJis1ibfWnVf9XeBxhLpEmO-Jk00x5mS5-jdDiECfw7nFLfj66IGam99zsZ6wzB8x3_OnKBwhJe9eZOLxYr7Bdsz7Iiy9nDtraWNlDMNEV7FFKw",
  "q": "1HGYJcQ1ke48TBjPUvJ7ExtcrfIVAIVoLvkbfVzu6WPZbFZtvUEVaY-faA_d4HjwNFrg-9qHhAmypjn4_jhDCJ10qd-UBA0qqwUqkpzvWk6xhlRClufsY_Pnrq7rmWy7nxvGJcGRCaYggflrGL9TZ7SSN9zUnC2CM52vKHbNJjdulZmw8RqgVjrvOI5EP6jGhG_7ITWqBXNGvi3QdIdLRm8Y7SGPlB9CnG-dxqt3-FVvXdzhKPilBlhyFdLur0R9go_uwpTKSoNxw37og5aKbgT0hOMXHq88dKCTIUvZfXal-03xLewLwrszYcQmgLzpqUxOAj3IzpP3dVKHcaq9ZQ",
  "dp": "lOPtY9nlRONOgIeJUzlhNTaR7dbJHDaOPyN25o3TWgXdbboFwbHjtW1sGPm-yI-ZjGK6ZFYSmxKKwUz5-tZu7MRleCwkld7EKBI65fHZiMGejgE5-VrZXdxUJX9PUrllZE0v3cze_gsMnwWog1ykhDDw5s0tgKeH9RrK_C68mlN_-AnQMLiOkA0eLoiilMa2ZQDeMVQTJ8BQRBTPqtozIE52fc69_OoG8rNRvDFG__9iFXq5u0_88Kn7zlkDtGoh9plRyscYvgKA0ydBovJxHItzieUuuHt4nF6otF8xMwM3AXyl5xdSMaIUfDeKDbBlG8xvMqWRDRibae_gLyEWCw",
  "dq": "r-KYV_Q5cedu7oW_6GmvMeN-eNkrQDIzTmiZtNHjT0GGuiZYVs7ynmH1VR-F0BnwrTfsezey6MNqsCrhFgCYpyJNe3MKxcvs3oi5dYcOt5LdcVyDgRLk6N__meViU7TtJU7GX24B2Z473cAVRfjpYbvjLvLa567Z1Eghw3uQX6qXGK6VCxjDVIEYm5dVs-rU6MMZhKY8bKTDFiMyKbf1v4utdG5LxBOZf5D9bIV8HxME0A5WMCij4DwLwDvRtzQaQaVOxLSRQt3Oq09_y6owU-QwWXD2LEZi5CApj_CPUUuRIh2mpyF9nyyD3taaFg3R2oO9NifXAAkLYIwCbT4x7Q",
  "qi": "UBRveRoXOQDc1lX4gCdF3X9Dr1sqB0nwvXAGlcDcJveDqlNs1mgMtYzOk7wkGV-dnWnT9QthAWY5dcw05jKCg27nmXs613gBveN8fJAtPG6wyrgYoBaBgi3VQYr0sWv_a2HyOJJ0Umkhy3iwTSiPlZYKKcXl7KMe8zX5hFGqmJ6l9I24zBtg8dlEWP-xQguxaQFT5QnmNrNqM1VQbWZB6LfAFIiK9mbiY5HIrhtPc9Kl6xms-Z571IKR7beAiaEuXfUW6yFuzAbQenymU5KlledHsdHqKj5eWDM8sggg6dHzlNQ9DduaUiHtPvp0h3hzASs3N-0-f6ukzhF7RxQRQQ"
}"#;

/// base64url(SHA-256(n)) of [`JWK`], computed in Node.
pub const ADDRESS: &str = "AazPfbefy2nW0WsZU4DyQ9K1aaXlDivkX0r8GHTrQ78";

/// Deep-hashes (hex) of small trees, from arweave-js and arbundles.
pub struct DeepHashVectors {
    pub empty_blob: &'static str,
    pub hello_blob: &'static str,
    pub empty_list: &'static str,
    /// `["a", ["b", ""], [], "dataitem"]`
    pub nested: &'static str,
    /// [`big_blob`]
    pub big_blob_100000: &'static str,
}

pub const DEEP_HASHES: DeepHashVectors = DeepHashVectors {
    empty_blob:
        "fbf00cc444f5fea9dc3bedf62a13fba8ae87e7445fc910567a23bec4eb82fadb1143c433069314d8362983dc\
        3c2e4a38",
    hello_blob:
        "33ab2407a6c328c0bc1bbe5971f49af5c1908985f83c3d2bd89a9e221dd8b068dc61ce968ba3f9ab12d5361b\
        a3944382",
    empty_list:
        "a69e7d37fdc7f040a9ec16aae84de24fab4a653dac4de0bd247e36bab9fe45d9289c5a04a893c95285812f5c\
        efc9707a",
    nested:
        "4a40823807ed6f462d54e047977c175729dac23b8f6a2b60eedfab1052c335f96d7a02b7e7bd6b51509b063a\
        f78fc00b",
    big_blob_100000:
        "7ef575118aad4aa02ec12a8183a9efff666c153ba80808ca223e145f8f9aecd74fcb44e74907f4049d81bdc9\
        b078e88f",
};

/// 100,000 bytes, byte `i` = `(7 i + 3) mod 256` (as the Node script built them).
pub fn big_blob() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(7).wrapping_add(3) & 0xff) as u8)
        .collect()
}

/// A data item made and signed by arbundles, and the fields it was made from.
pub struct ItemVector {
    /// The data, UTF-8.
    pub data: &'static str,
    /// base64url of the 32-byte target, as given to `createData`.
    pub target: Option<&'static str>,
    /// The anchor string as given to `createData` (arbundles takes its UTF-8 bytes).
    pub anchor: Option<&'static str>,
    pub tag_pairs: &'static [(&'static str, &'static str)],
    /// The whole item, standard base64.
    pub raw_b64: &'static str,
    pub id: &'static str,
    /// The deep-hash arbundles signed (`getSignatureData`), hex.
    pub message_hex: &'static str,
    /// `rawTags`, hex.
    pub tag_bytes_hex: &'static str,
}

impl ItemVector {
    pub fn tags(&self) -> Vec<Tag> {
        self.tag_pairs
            .iter()
            .map(|(n, v)| Tag::new(*n, *v))
            .collect()
    }
}

/// The tags of [`FULL_ITEM`].
pub fn full_item_tags() -> Vec<Tag> {
    FULL_ITEM.tags()
}

/// Target, anchor, four tags (one non-ASCII, one over 64 bytes) and JSON data.
pub const FULL_ITEM: ItemVector = ItemVector {
    data: "{\"oip\":\"test data item\",\"n\":1}",
    target: Some("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"),
    anchor: Some("oipd-test-anchor-0123456789abcde"),
    tag_pairs: &[
        ("Content-Type", "application/json"),
        ("Index-Method", "OIP"),
        ("Ver", "0.8.0"),
        ("Note", "d\u{e9}j\u{e0} vu \u{2013} \u{1f600} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ],
    raw_b64: "AQCzgBxIrzbww5A6WcvsACTv6AZp2WJe0ekBnCwztnZSd4B9SzPzSeXokg61bMKlRZe90IRQTTA2Mu/3ehL5jFeY\
        KjCvSSNKH9S77kNtBlaMg8E1PV/TZWXhVqgpH4zmTJcpDMw1g9GkX7XLY49BGa9YSXxV1kdQDVABlMgaU7RqEiAs\
        8m8BeYRcGtxOFlqmZAvX9i6Lf/mmLkiD1mLvnz6RzPlohjSKGii3RG17HXa2nj/JG+jHrsmcRkP0F/gG8MbjClO4\
        Qcf96sSd5Olp+1ZOvT4IEFXoi8Hf0Ni+XzgGgzQkFpp+glytEBrn1brm+fx7CT4unT8+hytiXZjlRYHHlsvHz0rP\
        grkGwnKCqvrZqNSQ5ysquiBc2pvshprgzUcgMCXM1A7+8bWVGmQeVeDwc2SStmUgbJy8VRvIasBbbogR5Gm3vgal\
        EZfdGHOJ3DlMhXM7Y4MzQApQXWAVnO9kvCqwHN3g5VplLEM6Pepax01t1ld+6Ex8UcFU74Y0cr6aUVYTk9eDU/Pr\
        HwHu0qfENlKFuIxW1F5UnzRvEzl9M8oyYR1bnhzQ16D2vhx+Cnr4nBaaZOiN9Q/Ra0VwiNQ9Au1iTROZQsM892on\
        59U2OrLNiLI3eGY4ano/JQkv2ozfpwzsWt2fRdmP5F1vJlS4X7kkX8tEMWLUDyYoyS2E2cx64ouQKJE0P0MbfueW\
        BAckCSAGSXokG6Mt60XHqL/F0siBp4SM5Jd4NmzBS1D+1G6kAhu8Y3piNkoDIYprU+Db+w7va6dIpp3fTo2zStDq\
        wriBrqn4fZS8TpSB8o/1/ivZQRCU8eWHA6j0zkIpHDAw9cjU6GT2TnUzKUkKDMzx2X9oTcP45wdCJBqeLXUmQDWD\
        lLpFnUBzhbBqH+gZaro3wZgtMd3lrE9RISbxX6dzpZ3hboxhIYGTAl0sT4e1Qb4bDJ0y/X17pntf68bpMc/uES4N\
        UbQtBuZ3q7+WYgljY3ao25hlL417lMXuHh0Hs/crAl7Rn+vxsLyaPG3yu9zw0W5IYHVZJnh1smsK8F0veUgq79Xk\
        AmlSaiy8jltjCEgfJR7WJpeTsb5mRnslp3zwKFGtI6T09pbgwt5EfLrCqnf9uLymlRSuj4zfQRDEuQ5dGTIWqEsi\
        ctORsyLnK9WAuGYbh0euTRjUXNWRE5BpZMGHUQmhn4Sdc42Jnfy0OqaYA41joSylqggto6tkFIYbl8xpQDajPVoa\
        heSgNIY6pv9xdPdF+OFVAM6wj6XsLRROFwzVC0f3D1Uyzwc+YfAVDLLpWYcSTIP1+yCKERKHeycXFLr3nwxmRsJD\
        CZcPwNaYUELnh+2CSJx9eQ6++Hnx6HF9cfT/D0CUOaFijwj3AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\
        Hh8gAW9pcGQtdGVzdC1hbmNob3ItMDEyMzQ1Njc4OWFiY2RlBAAAAAAAAAClAAAAAAAAAAgYQ29udGVudC1UeXBl\
        IGFwcGxpY2F0aW9uL2pzb24YSW5kZXgtTWV0aG9kBk9JUAZWZXIKMC44LjAITm90ZcYBZMOpasOgIHZ1IOKAkyDw\
        n5iAIHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4\
        eHh4eHh4eHh4eHh4eHh4eHh4AHsib2lwIjoidGVzdCBkYXRhIGl0ZW0iLCJuIjoxfQ==",
    id: "lPlyKCAbPmKHQZpvihP1U8dZ8HE2r7dObaqsmsn81vA",
    message_hex: "060aa9ba0a429c4dd9b84950b8fcd7d9c674e2a4e028e4e44a505debf74da1fce87a4c6563eaa922b3b4d29c\
        c6c871cc",
    tag_bytes_hex: "0818436f6e74656e742d54797065206170706c69636174696f6e2f6a736f6e18496e6465782d4d6574686f64\
        064f4950065665720a302e382e30084e6f7465c60164c3a96ac3a020767520e2809320f09f98802078787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        787878787878787878787878787878787878787878787878787878787878787800",
};

/// No target, no anchor, no tags, no data.
pub const BARE_ITEM: ItemVector = ItemVector {
    data: "",
    target: None,
    anchor: None,
    tag_pairs: &[],
    raw_b64:
        "AQAi0yLJ0isCjf6obj+pJCC/nW6tGopqw24rlCmw13h6qMxwR6PKrq9TdsFFrcuW83Qcm/FkXOZyBX40+RjfmyK3\
        LQVAsdt9hhJTDnRqh4XKMv4KjWCXhZsz8G5eVHYpXpVU275vkDTIzhSvOpPos/zy/2V0BPhmcdftrVR30qkLEutw\
        xS1qneqSKXQbDSOdq6U9Z+hFkGXEnDQCxHBxQ6+mOYpOouCrQ5BNcMhEr6hpT4lT/Wh8PMnHJbFR46tby9qMfqoB\
        VMH6AtdwNSZR5AxNE1RT/qTtYp0eEGvHKF94G/QPCQOhWew3u7ivNlZ6EMrohLp8ssuBvPRaePBaHPslzjZe3NVg\
        S0/GcX1ZO1YkrevCjef4A0eNf/rVth399qWMTMdnpKNtkccgd7pu0kVao+Hh97231IYbtp6fF6e7NolZor6i8de3\
        Cw/nqDcOO8KVhoZ4WcH/gHMW5P8EqQ6QFphkI8cNBSNjxS8gbQeJ/8T5+e9Z9qIBmfvBUHkJjDH1bYHm7XX/oMph\
        7yAvUKd4P3vwo1YgIs/j0Csg4Kh+sz/9CENdloJkVeJ8rVrQiVhD0THvwpVlmAbffO+T4iwmKFvEju/ZQmQscFr7\
        fDE3eyATGg34Gz+5ty6HngnLX4sYBXJRA7laoWIo0+W1uKuJxyjqWJW1DyvEcwiqWIztx8x64ouQKJE0P0MbfueW\
        BAckCSAGSXokG6Mt60XHqL/F0siBp4SM5Jd4NmzBS1D+1G6kAhu8Y3piNkoDIYprU+Db+w7va6dIpp3fTo2zStDq\
        wriBrqn4fZS8TpSB8o/1/ivZQRCU8eWHA6j0zkIpHDAw9cjU6GT2TnUzKUkKDMzx2X9oTcP45wdCJBqeLXUmQDWD\
        lLpFnUBzhbBqH+gZaro3wZgtMd3lrE9RISbxX6dzpZ3hboxhIYGTAl0sT4e1Qb4bDJ0y/X17pntf68bpMc/uES4N\
        UbQtBuZ3q7+WYgljY3ao25hlL417lMXuHh0Hs/crAl7Rn+vxsLyaPG3yu9zw0W5IYHVZJnh1smsK8F0veUgq79Xk\
        AmlSaiy8jltjCEgfJR7WJpeTsb5mRnslp3zwKFGtI6T09pbgwt5EfLrCqnf9uLymlRSuj4zfQRDEuQ5dGTIWqEsi\
        ctORsyLnK9WAuGYbh0euTRjUXNWRE5BpZMGHUQmhn4Sdc42Jnfy0OqaYA41joSylqggto6tkFIYbl8xpQDajPVoa\
        heSgNIY6pv9xdPdF+OFVAM6wj6XsLRROFwzVC0f3D1Uyzwc+YfAVDLLpWYcSTIP1+yCKERKHeycXFLr3nwxmRsJD\
        CZcPwNaYUELnh+2CSJx9eQ6++Hnx6HF9cfT/D0CUOaFijwj3AAAAAAAAAAAAAAAAAAAAAAAA",
    id: "SL-1K-MqzfFQjayVCG22N13mQcn9YpykUck980NHN18",
    message_hex:
        "c97439f7bee4af524286905a1627c38d3257a862b3d49121f83d4d1d48b40c0749c10ac39383353d31ac9510\
        b19c7011",
    tag_bytes_hex: "",
};
