//! FORMAT.md §18 against a computation from the spec's own rules: the
//! values of the worked example that an implementer checks step by step
//! (derived keys, the token, issued-at, nonce and tag, the HChaCha20
//! subkey and ChaCha20 nonce, associated data, plaintext) are recomputed
//! here from the master key, the `small-session` vector and the RustCrypto
//! primitives, so that they cannot drift from the format. (Not compared:
//! the ciphertext rows and the spaced header bytes, which follow from the
//! token, and the plaintext's annotation.)

use chacha20::{hchacha, Key, R20};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use hkdf::Hkdf;
use sha2::Sha256;

/// §18, from its heading to the end of the file (it is the last section).
fn worked_example() -> String {
    let format = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md"))
        .expect("docs/FORMAT.md");
    let start = format
        .find("## 18. Worked example")
        .expect("§18 in FORMAT.md");
    format[start..].to_owned()
}

/// The hex that follows `label` on the line starting with it.
fn labelled(text: &str, label: &str) -> Vec<u8> {
    let line = text
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no line starting with {label:?} in §18"));
    let digits = line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("nothing after {label:?}"));
    hex::decode(digits).unwrap_or_else(|e| panic!("{label:?}: {e}"))
}

/// The hex of the code block that follows `heading`, its lines joined,
/// without spaces.
fn block_after(text: &str, heading: &str) -> Vec<u8> {
    let after = &text[text.find(heading).unwrap_or_else(|| panic!("{heading:?}"))..];
    let body = after.split("```text\n").nth(1).expect("a text block");
    let body = &body[..body.find("```").expect("the block's end")];
    hex::decode(body.split_whitespace().collect::<String>()).expect("hex")
}

fn small_session_vector() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors/format-v1.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("format-v1.json"))
            .expect("JSON");
    file["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == "small-session")
        .expect("small-session")
        .clone()
}

#[test]
fn the_worked_example_matches_a_computation_from_the_spec() {
    let text = worked_example();
    let vector = small_session_vector();

    // §2: HKDF-SHA256 under the v1 labels.
    let master: Vec<u8> = (0u8..32).collect();
    assert_eq!(labelled(&text, "master key"), master);
    let (prk, hkdf) = Hkdf::<Sha256>::extract(Some(b"sealed-session/v1"), &master);
    let mut k_enc = [0u8; 32];
    hkdf.expand(b"sealed-session/v1 XChaCha20-Poly1305 key", &mut k_enc)
        .expect("32 bytes");
    let mut kid = [0u8; 8];
    hkdf.expand(b"sealed-session/v1 key id", &mut kid)
        .expect("8 bytes");
    assert_eq!(labelled(&text, "PRK"), prk.as_slice());
    assert_eq!(labelled(&text, "K_enc"), k_enc);
    assert_eq!(labelled(&text, "KID"), kid);

    // §3: the vector's token, split into its fields.
    let token = vector["token"].as_str().expect("token");
    assert!(
        text.contains(&format!("\n{token}\n")),
        "§18 prints the vector's token"
    );
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token)
        .expect("base64url");
    let (header, rest) = bytes.split_at(18);
    let (nonce, sealed) = rest.split_at(24);
    assert_eq!(&header[..2], [1, 0]);
    assert_eq!(&header[2..10], kid);
    let issued_at = u64::from_be_bytes(header[10..18].try_into().expect("8 bytes"));
    assert!(text.contains(&format!("issued-at {issued_at} ")));
    assert_eq!(labelled(&text, "18      "), nonce);
    assert_eq!(labelled(&text, "123     "), &sealed[sealed.len() - 16..]);

    // §6/§7: XChaCha20-Poly1305 is ChaCha20-Poly1305 under the HChaCha20
    // subkey, with the nonce's last 8 bytes after 4 zero bytes.
    let input: [u8; 16] = nonce[..16].try_into().expect("16 bytes");
    let subkey = hchacha::<R20>(&Key::from(k_enc), &input.into());
    let mut chacha_nonce = [0u8; 12];
    chacha_nonce[4..].copy_from_slice(&nonce[16..]);
    assert_eq!(labelled(&text, "HChaCha20 subkey"), subkey.as_slice());
    assert_eq!(labelled(&text, "ChaCha20 nonce"), chacha_nonce);

    // §5: the associated data.
    let mut aad = header.to_vec();
    aad.extend_from_slice(&7u32.to_be_bytes());
    aad.extend_from_slice(b"session");
    assert_eq!(block_after(&text, "**Associated data**"), aad);

    // Both ways of opening give the plaintext §18 prints, which is the
    // vector's.
    let payload = || Payload {
        msg: sealed,
        aad: &aad,
    };
    let plaintext = XChaCha20Poly1305::new(&k_enc.into())
        .decrypt(nonce.try_into().expect("24 bytes"), payload())
        .expect("the token opens");
    let by_subkey = ChaCha20Poly1305::new(&subkey)
        .decrypt(&chacha_nonce.into(), payload())
        .expect("the token opens under the subkey");
    assert_eq!(by_subkey, plaintext);
    assert_eq!(block_after(&text, "**Plaintext**"), plaintext);
    assert_eq!(
        hex::encode(&plaintext),
        vector["plaintext_hex"].as_str().expect("plaintext_hex")
    );
}
