//! OpenSSL-compatible AES-256-CBC for encrypted `cfg<mac>.xml` files: `Salted__` + 8-byte
//! salt + PKCS#7-padded ciphertext, key and IV from EVP_BytesToKey with MD5 and 1 iteration.
//!
//! Invariants: `decrypt(encrypt(x, pw), pw) == x` for every UTF-8 text `x` without NUL bytes,
//! and `decrypt` never returns garbage: a plaintext is accepted only if its padding is valid
//! *and* it is UTF-8 text without NUL bytes (see [`decrypt`]).
//!
//! MD5 is not a choice but the phones' contract: Grandstream documents
//! `openssl enc -e -aes-256-cbc -k password`, written when OpenSSL's `enc` still derived keys
//! with MD5. OpenSSL 1.1 switched that default to SHA-256, so files made by a technician with
//! a current OpenSSL and no `-md md5` do not work on the phone; [`decrypt`] recognises them and
//! says how to fix them. We write EVP_BytesToKey by hand (it is ten lines) rather than pull in
//! a crate for it, as `reference/ecosystem.md` recommends.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};
use sha2::Sha256;

/// OpenSSL's magic at the start of a salted file.
const MAGIC: &[u8; 8] = b"Salted__";
/// Magic plus salt.
const HEADER_LEN: usize = 16;
const BLOCK: usize = 16;

/// Why a file could not be decrypted. Each message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error(
        "not an OpenSSL-encrypted file: it is {len} bytes long, shorter than the 16-byte \
         `Salted__` header plus salt"
    )]
    TooShort { len: usize },
    #[error(
        "not an OpenSSL-encrypted file: it starts with {found:?} instead of `Salted__` \
         (an unencrypted file, or one encrypted without a salt)"
    )]
    MissingHeader { found: String },
    #[error(
        "corrupt encrypted file: the ciphertext after the header is {len} bytes, not a \
         non-zero multiple of the 16-byte AES block (truncated?)"
    )]
    BadLength { len: usize },
    #[error(
        "wrong password (or the file was encrypted with a key derivation other than \
         EVP_BytesToKey/MD5, such as `-pbkdf2`, which Grandstream phones do not support)"
    )]
    WrongPassword,
    #[error(
        "the file was encrypted with SHA-256 key derivation (the OpenSSL 1.1+ default), which \
         Grandstream phones cannot read: re-encrypt with -md md5, e.g. \
         `openssl enc -e -aes-256-cbc -md md5 -k PASSWORD -in cfg.xml -out cfg<mac>.xml`"
    )]
    Sha256KeyDerivation,
}

/// Encrypts with a fresh random 8-byte salt, so two encryptions of one file differ.
pub fn encrypt(plaintext: &[u8], password: &str) -> Vec<u8> {
    encrypt_with_salt(plaintext, password, rand::random())
}

/// Deterministic form, for tests and known-answer vectors.
pub fn encrypt_with_salt(plaintext: &[u8], password: &str, salt: [u8; 8]) -> Vec<u8> {
    let (key, iv) = derive_key_iv(password, salt);
    // PKCS#7 always adds 1..=16 bytes, so a whole block is added when the length is aligned.
    let padded_len = (plaintext.len() / BLOCK + 1) * BLOCK;
    // One allocation of the final size: header, then the plaintext encrypted in place.
    let mut file = Vec::with_capacity(HEADER_LEN + padded_len);
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&salt);
    file.extend_from_slice(plaintext);
    file.resize(HEADER_LEN + padded_len, 0);
    let encryptor = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into());
    // The buffer holds exactly the padded length computed above, so padding cannot fail.
    let written = encryptor
        .encrypt_padded_mut::<Pkcs7>(&mut file[HEADER_LEN..], plaintext.len())
        .map(<[u8]>::len)
        .ok();
    debug_assert_eq!(written, Some(padded_len));
    file
}

/// Decrypts a `Salted__` file made with MD5 key derivation.
///
/// A wrong key passes the PKCS#7 check about once in 256 tries (when the last byte decrypts
/// to `01`), so padding alone would sometimes hand garbage to the XML reader. Config files are
/// UTF-8 text, so a key is accepted only if the plaintext is also valid UTF-8 without NUL
/// bytes; random bytes of any useful length practically never are. The price is that this
/// function cannot decrypt binary payloads; nothing in ProvDesk encrypts any.
///
/// When MD5 fails we try SHA-256 derivation, so a technician who forgot `-md md5` is told so
/// instead of "wrong password".
pub fn decrypt(file: &[u8], password: &str) -> Result<Vec<u8>, CryptError> {
    if file.len() < HEADER_LEN {
        return Err(CryptError::TooShort { len: file.len() });
    }
    if !is_encrypted(file) {
        return Err(CryptError::MissingHeader {
            found: String::from_utf8_lossy(&file[..MAGIC.len()]).into_owned(),
        });
    }
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&file[MAGIC.len()..HEADER_LEN]);
    let ciphertext = &file[HEADER_LEN..];
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK) {
        return Err(CryptError::BadLength {
            len: ciphertext.len(),
        });
    }
    let (key, iv) = derive_key_iv(password, salt);
    if let Some(plaintext) = try_decrypt(ciphertext, &key, &iv) {
        return Ok(plaintext);
    }
    let (key, iv) = evp_bytes_to_key::<Sha256>(password, salt);
    if try_decrypt(ciphertext, &key, &iv).is_some() {
        return Err(CryptError::Sha256KeyDerivation);
    }
    Err(CryptError::WrongPassword)
}

/// True when the bytes start with OpenSSL's `Salted__` magic.
pub fn is_encrypted(file: &[u8]) -> bool {
    file.starts_with(MAGIC)
}

/// OpenSSL's EVP_BytesToKey with MD5 and 1 iteration: the key and IV that
/// `openssl enc -aes-256-cbc -md md5 -k PASSWORD` uses for this salt.
pub fn derive_key_iv(password: &str, salt: [u8; 8]) -> ([u8; 32], [u8; 16]) {
    evp_bytes_to_key::<Md5>(password, salt)
}

/// EVP_BytesToKey, 1 iteration: D_1 = H(password ‖ salt), D_i = H(D_{i-1} ‖ password ‖ salt),
/// and key ‖ iv is the first 48 bytes of D_1 ‖ D_2 ‖ …
fn evp_bytes_to_key<D: Digest>(password: &str, salt: [u8; 8]) -> ([u8; 32], [u8; 16]) {
    let mut material = [0u8; 48];
    let mut filled = 0;
    let mut previous: Option<md5::digest::Output<D>> = None;
    while filled < material.len() {
        let mut hasher = D::new();
        if let Some(previous) = &previous {
            hasher.update(previous);
        }
        hasher.update(password.as_bytes());
        hasher.update(salt);
        let block = hasher.finalize();
        let take = block.len().min(material.len() - filled);
        material[filled..filled + take].copy_from_slice(&block[..take]);
        filled += take;
        previous = Some(block);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&material[..32]);
    iv.copy_from_slice(&material[32..]);
    (key, iv)
}

/// The plaintext if this key gives valid padding and NUL-free UTF-8 text, else `None`.
fn try_decrypt(ciphertext: &[u8], key: &[u8; 32], iv: &[u8; 16]) -> Option<Vec<u8>> {
    let mut buffer = ciphertext.to_vec();
    let decryptor = cbc::Decryptor::<Aes256>::new(key.into(), iv.into());
    let len = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
        .ok()?
        .len();
    buffer.truncate(len);
    let is_text = std::str::from_utf8(&buffer).is_ok() && !buffer.contains(&0);
    is_text.then_some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    const SALT: [u8; 8] = *b"saltsalt";
    const KNOWN_PLAINTEXT: &[u8] = b"<gs_provision version=\"1\"></gs_provision>\n";
    const KNOWN_CIPHERTEXT: &str = "375b8a740c1293b1f26818900dd618d9d09a8edd2d60b0fb2b05ff1b\
                                    facd54414ddba184b669cc00fb664a90c7c887a4";

    fn known_file() -> Vec<u8> {
        let mut file = b"Salted__saltsalt".to_vec();
        file.extend(hex::decode(KNOWN_CIPHERTEXT).unwrap());
        file
    }

    /// Decrypts `file` with `password` and compares with the plaintext or an error fragment.
    fn check(file: &[u8], password: &str, expected: Result<&[u8], &str>) {
        let got = decrypt(file, password);
        match (&got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g.as_slice(), e),
            (Err(g), Err(e)) => assert!(g.to_string().contains(e), "{g}"),
            _ => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn md5_key_derivation_matches_openssl() {
        let (key, iv) = derive_key_iv("password", SALT);
        assert_eq!(
            hex::encode_upper(key),
            "FDBDF3419FFF98BDB0241390F62A9DB35F4ABA29D77566377997314EBFC709F2"
        );
        assert_eq!(hex::encode_upper(iv), "0B5CA7B1081F94B1AC12E3C8BA87D05A");
    }

    #[test]
    fn sha256_vector_differs_from_ours_and_matches_the_fallback() {
        let sha_key = "0C8CDE87480244C4D1BBD7401F70B7AEBEDF5A4453D01A7665DB51AAF4D7DD72";
        let sha_iv = "6DEA80F410C6FA07183A01EED7EFCF6E";
        let (key, iv) = derive_key_iv("password", SALT);
        assert_ne!(hex::encode_upper(key), sha_key);
        assert_ne!(hex::encode_upper(iv), sha_iv);
        // The fallback must derive exactly what OpenSSL's SHA-256 default does.
        let (key, iv) = evp_bytes_to_key::<Sha256>("password", SALT);
        assert_eq!(hex::encode_upper(key), sha_key);
        assert_eq!(hex::encode_upper(iv), sha_iv);
    }

    #[test]
    fn known_ciphertext() {
        assert_eq!(
            encrypt_with_salt(KNOWN_PLAINTEXT, "password", SALT),
            known_file()
        );
        check(&known_file(), "password", Ok(KNOWN_PLAINTEXT));
    }

    #[test]
    fn empty_and_block_aligned_plaintexts() {
        for len in [0, 1, 15, 16, 17, 32] {
            let plaintext = "x".repeat(len);
            let file = encrypt(plaintext.as_bytes(), "pw");
            assert_eq!(file.len(), 16 + (len / 16 + 1) * 16);
            check(&file, "pw", Ok(plaintext.as_bytes()));
        }
    }

    #[test]
    fn random_salts_differ() {
        let a = encrypt(b"same", "pw");
        let b = encrypt(b"same", "pw");
        assert_ne!(a[8..16], b[8..16]);
    }

    #[test]
    fn rejects_files_that_are_not_encrypted() {
        check(
            b"",
            "pw",
            Err("not an OpenSSL-encrypted file: it is 0 bytes"),
        );
        check(b"Salted__salt", "pw", Err("not an OpenSSL-encrypted file"));
        check(
            b"<?xml version=\"1.0\"?><gs_provision/>",
            "pw",
            Err("not an OpenSSL-encrypted file: it starts with \"<?xml ve\""),
        );
    }

    #[test]
    fn rejects_bad_ciphertext_length() {
        let file = known_file();
        check(
            &file[..file.len() - 1],
            "password",
            Err("47 bytes, not a non-zero multiple"),
        );
        check(
            &file[..16],
            "password",
            Err("0 bytes, not a non-zero multiple"),
        );
    }

    #[test]
    fn rejects_wrong_password() {
        check(&known_file(), "Password", Err("wrong password"));
        // Many wrong passwords: none may slip through the padding check as garbage.
        let file = encrypt(b"<gs_provision version=\"1\"></gs_provision>\n", "right");
        for k in 0..2000 {
            check(&file, &format!("wrong{k}"), Err("wrong password"));
        }
    }

    #[test]
    fn recognises_sha256_key_derivation() {
        let (key, iv) = evp_bytes_to_key::<Sha256>("pw", SALT);
        let mut buffer = vec![0u8; 48];
        buffer[..KNOWN_PLAINTEXT.len()].copy_from_slice(KNOWN_PLAINTEXT);
        let ciphertext = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buffer, KNOWN_PLAINTEXT.len())
            .unwrap()
            .to_vec();
        let file = [b"Salted__saltsalt".as_slice(), &ciphertext].concat();
        check(&file, "pw", Err("re-encrypt with -md md5"));
        check(&file, "other", Err("wrong password"));
    }

    // Interop with the real `openssl` command. These fail (not skip) when it is missing: CI
    // installs it, and a test must never pass because its peer is absent.

    fn openssl(args: &[&str]) -> std::process::Output {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("the `openssl` command must be installed for the interop tests");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn path(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    const INTEROP_TEXT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n\
                                <gs_provision version=\"1\">\n  <config version=\"1\">\n    \
                                <P2>adm&amp;in é ☎</P2>\n  </config>\n</gs_provision>\n";

    #[test]
    fn openssl_decrypts_our_files() {
        let dir = tempfile::tempdir().unwrap();
        let encrypted = dir.path().join("cfg.xml.enc");
        std::fs::write(&encrypted, encrypt(INTEROP_TEXT.as_bytes(), "s3cret pw")).unwrap();
        let output = openssl(&[
            "enc",
            "-d",
            "-aes-256-cbc",
            "-md",
            "md5",
            "-pass",
            "pass:s3cret pw",
            "-in",
            path(&encrypted),
        ]);
        assert_eq!(String::from_utf8(output.stdout).unwrap(), INTEROP_TEXT);
    }

    #[test]
    fn we_decrypt_openssl_md5_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("cfg.xml");
        let encrypted = dir.path().join("cfg.xml.enc");
        std::fs::write(&plain, INTEROP_TEXT).unwrap();
        openssl(&[
            "enc",
            "-e",
            "-aes-256-cbc",
            "-md",
            "md5",
            "-k",
            "s3cret",
            "-in",
            path(&plain),
            "-out",
            path(&encrypted),
        ]);
        let file = std::fs::read(&encrypted).unwrap();
        check(&file, "s3cret", Ok(INTEROP_TEXT.as_bytes()));
        check(&file, "s3cret!", Err("wrong password"));
    }

    #[test]
    fn openssl_sha256_default_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("cfg.xml");
        let encrypted = dir.path().join("cfg.xml.enc");
        std::fs::write(&plain, INTEROP_TEXT).unwrap();
        // No -md and no -pbkdf2: OpenSSL ≥ 1.1 derives with SHA-256 (and warns about it).
        openssl(&[
            "enc",
            "-e",
            "-aes-256-cbc",
            "-k",
            "s3cret",
            "-in",
            path(&plain),
            "-out",
            path(&encrypted),
        ]);
        let file = std::fs::read(&encrypted).unwrap();
        check(&file, "s3cret", Err("SHA-256 key derivation"));
        check(&file, "wrong", Err("wrong password"));
    }

    proptest::proptest! {
        #[test]
        fn round_trips_any_text(text in "[^\u{0}]*", password in ".*") {
            let file = encrypt(text.as_bytes(), &password);
            proptest::prop_assert_eq!(decrypt(&file, &password), Ok(text.into_bytes()));
        }
    }
}
