//! The reference sessions, defined once for the benchmarks (and the
//! allocation test, which includes this file by path).
//!
//! - small: user id, CSRF token, locale (about 128 bytes of entries);
//! - typical: small plus a cart of 18 lines (about 1 KB);
//! - large: typical plus a wishlist and recently viewed items (about 3.5 KB).
//!
//! The peer carries the same data as one `serde_json` document.

#![allow(dead_code)] // Each including target uses a different part.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use sealed_session::{
    Compression, Error, FixedClock, KeyRing, Limits, MasterKey, Priority, Sealer, Session,
};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Arc;

/// The "now" of every benchmark.
pub const NOW: u64 = 1_700_000_000;
/// Cookie name of every benchmark.
pub const COOKIE_NAME: &str = "session";
/// The primary master key of every benchmark.
pub const KEY: [u8; 32] = [0x42; 32];
/// The retired key that seals the tokens opened with a fallback key.
pub const OLD_KEY: [u8; 32] = [0x24; 32];

/// One cart or wishlist line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Stock-keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u16,
    /// Unit price in cents.
    pub price: u32,
}

/// A reference session's entries as one document: the shape a Rust user
/// would give `serde_json` in a private cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// Logged-in user.
    pub user_id: u64,
    /// CSRF secret, hex.
    pub csrf_token: String,
    /// Preferred locale.
    pub locale: String,
    /// Shopping cart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cart: Vec<Line>,
    /// Saved for later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wishlist: Vec<Line>,
    /// Product slugs, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recently_viewed: Vec<String>,
}

/// A named reference session.
pub struct Reference {
    /// `small`, `typical` or `large`.
    pub name: &'static str,
    /// Its entries.
    pub data: SessionData,
}

fn lines(count: usize, seed: usize) -> Vec<Line> {
    const COLORS: [&str; 4] = ["BLK", "WHT", "NVY", "RED"];
    const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
    (0..count)
        .map(|i| {
            let n = seed * 1000 + i;
            Line {
                sku: format!(
                    "SKU-{:06}-{}-{}",
                    104_729 * (n + 1) % 1_000_000,
                    COLORS[n % 4],
                    SIZES[(n / 4) % 4]
                ),
                quantity: (1 + n % 3) as u16,
                price: 499 + (n as u32 * 7_919) % 20_000,
            }
        })
        .collect()
}

/// User id, CSRF token, locale.
pub fn small() -> Reference {
    Reference {
        name: "small",
        data: SessionData {
            user_id: 1_048_577,
            csrf_token: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                .to_owned(),
            locale: "en-GB".to_owned(),
            cart: Vec::new(),
            wishlist: Vec::new(),
            recently_viewed: Vec::new(),
        },
    }
}

/// Small plus a cart of 18 lines.
pub fn typical() -> Reference {
    let mut data = small().data;
    data.cart = lines(18, 1);
    Reference {
        name: "typical",
        data,
    }
}

/// Typical plus a wishlist of 40 lines and 24 recently viewed products.
pub fn large() -> Reference {
    let mut data = typical().data;
    data.wishlist = lines(40, 2);
    data.recently_viewed = (0..24)
        .map(|i| format!("product-{:05}-slug", 7_001 * (i + 1) % 100_000))
        .collect();
    Reference {
        name: "large",
        data,
    }
}

/// The three reference sessions, smallest first.
pub fn all() -> [Reference; 3] {
    [small(), typical(), large()]
}

/// Limits that admit the large session uncompressed (its token is longer
/// than the default 4096 characters).
pub fn limits() -> Limits {
    Limits::default().with_max_token_len(8192)
}

/// A sealer at [`NOW`] over `ring`.
pub fn sealer_with(ring: KeyRing, compression: Compression) -> Sealer {
    Sealer::builder(ring)
        .cookie_name(COOKIE_NAME)
        .limits(limits())
        .compression(compression)
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .expect("valid sealer")
}

/// A sealer under [`KEY`].
pub fn sealer(compression: Compression) -> Sealer {
    sealer_with(KeyRing::new(master(&KEY)), compression)
}

/// The master key of these bytes.
pub fn master(bytes: &[u8; 32]) -> MasterKey {
    MasterKey::from_bytes(bytes).expect("32-byte key")
}

/// Writes the entries into a session, each with the priority an
/// application would give it.
pub fn fill(session: &mut Session, data: &SessionData) -> Result<(), Error> {
    session.insert_with_priority("user_id", data.user_id, Priority::Critical)?;
    session.insert_with_priority("csrf_token", &data.csrf_token, Priority::Critical)?;
    session.insert_with_priority("locale", &data.locale, Priority::High)?;
    if !data.cart.is_empty() {
        session.insert_with_priority("cart", &data.cart, Priority::Normal)?;
    }
    if !data.wishlist.is_empty() {
        session.insert_with_priority("wishlist", &data.wishlist, Priority::Low)?;
    }
    if !data.recently_viewed.is_empty() {
        session.insert_with_priority("recently_viewed", &data.recently_viewed, Priority::Low)?;
    }
    Ok(())
}

/// A new session holding `data`.
pub fn session(sealer: &Sealer, data: &SessionData) -> Session {
    let mut session = sealer.new_session().expect("new session");
    fill(&mut session, data).expect("fill");
    session
}

/// The common request: who is this, and is the form genuine.
pub fn read_two(session: &Session) -> (u64, String) {
    let user_id = session.get("user_id").expect("decodes").expect("present");
    let csrf = session
        .get("csrf_token")
        .expect("decodes")
        .expect("present");
    (user_id, csrf)
}

/// Every key, decoded into the document the peer deserializes.
pub fn read_all(session: &Session) -> SessionData {
    let get_vec = |key| session.get(key).expect("decodes").unwrap_or_default();
    SessionData {
        user_id: session.get("user_id").expect("decodes").expect("present"),
        csrf_token: session
            .get("csrf_token")
            .expect("decodes")
            .expect("present"),
        locale: session.get("locale").expect("decodes").expect("present"),
        cart: get_vec("cart"),
        wishlist: get_vec("wishlist"),
        recently_viewed: session
            .get("recently_viewed")
            .expect("decodes")
            .unwrap_or_default(),
    }
}

/// The limit: the bare XChaCha20-Poly1305 cipher on a plaintext of our
/// length, with associated data as long as ours (18-byte header, 4-byte
/// length, cookie name).
pub struct BareCipher {
    cipher: XChaCha20Poly1305,
    nonce: XNonce,
    aad: [u8; 18 + 4 + COOKIE_NAME.len()],
    clear: Vec<u8>,
    sealed: Vec<u8>,
    tag: Tag,
}

impl BareCipher {
    /// A cipher, a plaintext of `len` bytes and its sealed form.
    pub fn new(len: usize) -> Self {
        let cipher = XChaCha20Poly1305::new(&KEY.into());
        let nonce = XNonce::from([7; 24]);
        let aad = [0u8; 18 + 4 + COOKIE_NAME.len()];
        let clear = vec![0x5a; len];
        let mut sealed = clear.clone();
        let tag = cipher
            .encrypt_inout_detached(&nonce, &aad, sealed.as_mut_slice().into())
            .expect("encrypt");
        BareCipher {
            cipher,
            nonce,
            aad,
            clear,
            sealed,
            tag,
        }
    }

    /// Copies the plaintext into `work` and encrypts it in place.
    pub fn seal(&self, work: &mut [u8]) -> Tag {
        work.copy_from_slice(&self.clear);
        self.cipher
            .encrypt_inout_detached(&self.nonce, &self.aad, black_box(work).into())
            .expect("encrypt")
    }

    /// Copies the ciphertext into `work` and decrypts it in place.
    pub fn open(&self, work: &mut [u8]) {
        work.copy_from_slice(&self.sealed);
        self.cipher
            .decrypt_inout_detached(&self.nonce, &self.aad, black_box(work).into(), &self.tag)
            .expect("decrypt");
    }
}
