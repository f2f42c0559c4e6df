//! SKELETON — the formats helper replaces this file. Signatures are the agreed interface.
//! OpenSSL-compatible AES-256-CBC (`Salted__` + salt + ciphertext, EVP_BytesToKey with MD5).

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("not implemented yet")]
    NotImplemented,
}

/// Encrypts with a fresh random 8-byte salt.
pub fn encrypt(plaintext: &[u8], password: &str) -> Vec<u8> {
    encrypt_with_salt(plaintext, password, [0; 8])
}

/// Deterministic form, for tests and known-answer vectors.
pub fn encrypt_with_salt(_plaintext: &[u8], _password: &str, _salt: [u8; 8]) -> Vec<u8> {
    Vec::new()
}

/// Decrypts a `Salted__` file; a wrong password or a SHA-256-derived file is an error.
pub fn decrypt(_file: &[u8], _password: &str) -> Result<Vec<u8>, CryptError> {
    Err(CryptError::NotImplemented)
}

/// True when the bytes start with OpenSSL's `Salted__` magic.
pub fn is_encrypted(file: &[u8]) -> bool {
    file.starts_with(b"Salted__")
}
