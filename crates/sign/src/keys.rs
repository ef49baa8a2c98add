//! cosign key files.
//!
//! The private key file is PEM whose body is a JSON document: the PKCS#8
//! DER of an ECDSA P-256 key, encrypted with NaCl secretbox under a key
//! derived by scrypt from the password. sealcraft writes the label
//! `ENCRYPTED COSIGN PRIVATE KEY`, which old and new readers accept, and
//! reads both that and `ENCRYPTED SIGSTORE PRIVATE KEY`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use sealcraft_secrets::Secret;

/// The label sealcraft writes.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The label newer cosign writes.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

/// scrypt parameter sets readers accept (log2 N, r, p): legacy, standard, OWASP.
const ACCEPTED_SCRYPT: [(u64, u32, u32); 3] = [(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)];

#[derive(Serialize, Deserialize)]
struct KeyFile {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// A private signing key.
pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PrivateKey(<redacted>)")
    }
}

/// A public verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PrivateKey {
    /// A new random P-256 key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::random(&mut OsRng),
        }
    }

    /// Decrypts a cosign private key file.
    pub fn from_encrypted_pem(pem: &str, password: &Secret) -> Result<Self> {
        let (label, body) = pem_decode(pem).ok_or(Error::NotAKeyFile {
            reason: "no PEM block",
        })?;
        if label != COSIGN_LABEL && label != SIGSTORE_LABEL {
            return Err(Error::UnsupportedKeyLabel { label });
        }
        let file: KeyFile = serde_json::from_slice(&body).map_err(|_| Error::NotAKeyFile {
            reason: "the PEM body is not a cosign key document",
        })?;
        if file.kdf.name != "scrypt" || file.cipher.name != "nacl/secretbox" {
            return Err(Error::NotAKeyFile {
                reason: "unsupported kdf or cipher (expected scrypt and nacl/secretbox)",
            });
        }
        let params = (file.kdf.params.n, file.kdf.params.r, file.kdf.params.p);
        if !ACCEPTED_SCRYPT.contains(&params) {
            return Err(Error::NotAKeyFile {
                reason: "unsupported scrypt parameters",
            });
        }
        let salt = STANDARD
            .decode(&file.kdf.salt)
            .map_err(|_| Error::NotAKeyFile {
                reason: "salt is not base64",
            })?;
        let nonce = STANDARD
            .decode(&file.cipher.nonce)
            .map_err(|_| Error::NotAKeyFile {
                reason: "nonce is not base64",
            })?;
        let ciphertext = STANDARD
            .decode(&file.ciphertext)
            .map_err(|_| Error::NotAKeyFile {
                reason: "ciphertext is not base64",
            })?;
        if nonce.len() != 24 {
            return Err(Error::NotAKeyFile {
                reason: "nonce is not 24 bytes",
            });
        }
        let derived = derive_key(password, &salt, params.0)?;
        let cipher = XSalsa20Poly1305::new_from_slice(derived.as_slice()).map_err(|_| {
            Error::NotAKeyFile {
                reason: "derived key has the wrong length",
            }
        })?;
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
                .map_err(|_| Error::WrongPassword)?,
        );
        let key = SigningKey::from_pkcs8_der(&plaintext).map_err(|_| Error::NotAKeyFile {
            reason: "the decrypted key is not a PKCS#8 ECDSA P-256 key",
        })?;
        Ok(Self { key })
    }

    /// Encrypts the key as a cosign key file (scrypt N=65536 r=8 p=1, secretbox).
    pub fn to_encrypted_pem(&self, password: &Secret) -> Result<String> {
        let der = self.key.to_pkcs8_der().map_err(|_| Error::KeyEncoding)?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let derived = derive_key(password, &salt, 65536)?;
        let cipher =
            XSalsa20Poly1305::new_from_slice(derived.as_slice()).map_err(|_| Error::KeyEncoding)?;
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
            .map_err(|_| Error::KeyEncoding)?;
        let file = KeyFile {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: 65536,
                    r: 8,
                    p: 1,
                },
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        };
        let json = serde_json::to_vec(&file).map_err(|_| Error::KeyEncoding)?;
        Ok(pem_encode(COSIGN_LABEL, &json))
    }

    /// Reads an unencrypted PKCS#8 PEM (`PRIVATE KEY`), as made by openssl.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| Error::NotAKeyFile {
            reason: "not a PKCS#8 ECDSA P-256 private key",
        })?;
        Ok(Self { key })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// Signs `message` (ECDSA P-256 over SHA-256) and returns the DER signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// Something that makes cosign-compatible signatures: a key in memory, or a
/// key that never leaves a KMS (Vault/OpenBao transit).
pub trait Signer: Send + Sync {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// The DER ECDSA P-256 / SHA-256 signature over `message`.
    fn sign(&self, message: &[u8]) -> crate::Result<Vec<u8>>;
}

impl Signer for PrivateKey {
    fn public_key(&self) -> PublicKey {
        PrivateKey::public_key(self)
    }

    fn sign(&self, message: &[u8]) -> crate::Result<Vec<u8>> {
        Ok(PrivateKey::sign(self, message))
    }
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` PEM (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key =
            VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| Error::NotAKeyFile {
                reason: "not an ECDSA P-256 public key (PEM `PUBLIC KEY`)",
            })?;
        Ok(Self { key })
    }

    /// The key as a `PUBLIC KEY` PEM, as cosign writes it.
    pub fn to_pem(&self) -> Result<String> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| Error::KeyEncoding)
    }

    /// Checks a DER (or fixed-size) ECDSA signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        use p256::ecdsa::signature::Verifier as _;
        let signature = p256::ecdsa::Signature::from_der(signature)
            .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
            .map_err(|_| Error::BadSignature {
                reason: "not an ECDSA signature",
            })?;
        self.key
            .verify(message, &signature)
            .map_err(|_| Error::BadSignature {
                reason: "the signature does not match this key and content",
            })
    }
}

fn derive_key(password: &Secret, salt: &[u8], n: u64) -> Result<Zeroizing<[u8; 32]>> {
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| Error::KeyEncoding)?;
    let params = scrypt::Params::new(log_n, 8, 1, 32).map_err(|_| Error::KeyEncoding)?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(
        password.expose().as_bytes(),
        salt,
        &params,
        key.as_mut_slice(),
    )
    .map_err(|_| Error::KeyEncoding)?;
    Ok(key)
}

/// PEM with 64-column base64 lines and LF endings, as Go's encoding/pem writes it.
fn pem_encode(label: &str, body: &[u8]) -> String {
    let encoded = STANDARD.encode(body);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The first PEM block: its label and decoded body (CRLF tolerated).
fn pem_decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let decoded = STANDARD.decode(body).ok()?;
    Some((label, decoded))
}
