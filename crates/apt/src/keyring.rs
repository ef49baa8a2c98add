//! OpenPGP keyrings and the signatures of Release files.
//!
//! A keyring is every public key of one or more files (binary `*.gpg`, as
//! Debian ships them, or ASCII-armored `*.asc`, many keys per file). A
//! signature counts when it was made by a key of the keyring (primary key
//! or signing subkey) that was valid when it signed: its bindings verify,
//! it may sign, it was not expired then and has no revocation. Signatures
//! by keys the keyring does not hold are ignored, as apt ignores them when
//! another signature verifies; one that claims a known key but does not
//! verify refuses the file. SHA-1 and MD5 signatures never count.

use std::io::Cursor;
use std::time::{Duration, SystemTime};

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

/// Why a signature check refused a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A keyring file holds no usable public key.
    #[error("{name} holds no OpenPGP public key")]
    EmptyKeyring {
        /// The keyring.
        name: String,
    },
    /// A keyring file does not parse.
    #[error("{name} is not an OpenPGP keyring")]
    BadKeyring {
        /// The keyring.
        name: String,
        /// The cause.
        #[source]
        source: Box<pgp::errors::Error>,
    },
    /// The signed text or the signature does not parse.
    #[error("the signature does not parse")]
    Malformed(#[source] Box<pgp::errors::Error>),
    /// No signature was made by a key of the keyring.
    #[error("no signature is by a key of the keyring ({keyring})")]
    NoKnownSigner {
        /// The keyring's files.
        keyring: String,
    },
    /// A signature by a known key does not verify: the content was changed.
    #[error("the signature by {fingerprint} does not verify: the content is not what was signed")]
    BadSignature {
        /// The signing key.
        fingerprint: String,
    },
    /// A known key signed, but was not valid when it did.
    #[error("the signature by {fingerprint} does not count: {reason}")]
    KeyNotValid {
        /// The signing key.
        fingerprint: String,
        /// Why (expired, revoked, not for signing, a weak hash).
        reason: &'static str,
    },
}

/// Public keys to check signatures against.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    names: Vec<String>,
}

/// A key that can make signatures: a primary key or a subkey, with the
/// time its validity ends and whether it is usable at all.
struct Signer<'a> {
    fingerprint: String,
    key_id: String,
    key: KeyRef<'a>,
    created: u32,
    expires: Option<u32>,
    problem: Option<&'static str>,
}

/// The key material a signature is checked with.
enum KeyRef<'a> {
    Primary(&'a pgp::packet::PublicKey),
    Subkey(&'a pgp::packet::PublicSubkey),
}

impl KeyRef<'_> {
    fn verify(&self, signature: &Signature, data: &[u8]) -> bool {
        match self {
            Self::Primary(key) => signature.verify(*key, data).is_ok(),
            Self::Subkey(key) => signature.verify(*key, data).is_ok(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

fn seconds(lifetime: Option<pgp::types::Duration>) -> Option<u32> {
    lifetime
        .map(|lifetime| Duration::from(lifetime).as_secs())
        .filter(|seconds| *seconds > 0)
        .map(|seconds| u32::try_from(seconds).unwrap_or(u32::MAX))
}

fn expiry(created: u32, lifetime: Option<pgp::types::Duration>) -> Option<u32> {
    seconds(lifetime).map(|lifetime| created.saturating_add(lifetime))
}

impl Keyring {
    /// Adds the keys of one file (binary or armored, any number of keys).
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), SignatureError> {
        let (keys, _) =
            SignedPublicKey::from_reader_many(Cursor::new(bytes)).map_err(|source| {
                SignatureError::BadKeyring {
                    name: name.to_owned(),
                    source: Box::new(source),
                }
            })?;
        let mut added = 0;
        for key in keys {
            let key = key.map_err(|source| SignatureError::BadKeyring {
                name: name.to_owned(),
                source: Box::new(source),
            })?;
            self.keys.push(key);
            added += 1;
        }
        if added == 0 {
            return Err(SignatureError::EmptyKeyring {
                name: name.to_owned(),
            });
        }
        self.names.push(name.to_owned());
        Ok(())
    }

    /// Keeps only the keys whose primary or subkey fingerprint is one of `fingerprints`.
    pub fn retain_fingerprints(&mut self, fingerprints: &[String]) {
        let wanted = |fingerprint: &str| {
            fingerprints
                .iter()
                .any(|candidate| candidate.eq_ignore_ascii_case(fingerprint))
        };
        self.keys.retain(|key| {
            wanted(&hex(key.primary_key.fingerprint().as_bytes()))
                || key
                    .public_subkeys
                    .iter()
                    .any(|subkey| wanted(&hex(subkey.key.fingerprint().as_bytes())))
        });
    }

    /// Whether no key was added.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| hex(key.primary_key.fingerprint().as_bytes()))
            .collect()
    }

    fn signers(&self) -> Vec<Signer<'_>> {
        let mut signers = Vec::new();
        for key in &self.keys {
            let primary = &key.primary_key;
            let created = primary.created_at().as_secs();
            let is_self = |signature: &&Signature| {
                signature
                    .issuer_fingerprint()
                    .iter()
                    .any(|issuer| issuer.as_bytes() == primary.fingerprint().as_bytes())
                    || signature
                        .issuer_key_id()
                        .iter()
                        .any(|issuer| issuer.as_ref() == primary.legacy_key_id().as_ref())
            };
            // Self-signatures that verify; others' certifications say nothing about validity.
            let mut valid_self: Vec<&Signature> = Vec::new();
            for user in &key.details.users {
                for signature in user.signatures.iter().filter(is_self) {
                    if signature
                        .verify_certification(primary, pgp::types::Tag::UserId, &user.id)
                        .is_ok()
                    {
                        valid_self.push(signature);
                    }
                }
            }
            for signature in key.details.direct_signatures.iter().filter(is_self) {
                if signature.verify_key(primary).is_ok() {
                    valid_self.push(signature);
                }
            }
            // The newest self-signature says what the primary key may do and until when.
            let self_signature = valid_self
                .iter()
                .copied()
                .max_by_key(|signature| signature.created().map_or(0, |time| time.as_secs()));
            let revoked = key
                .details
                .revocation_signatures
                .iter()
                .any(|signature| signature.verify_key(primary).is_ok());
            let primary_problem = if revoked {
                Some("the key is revoked")
            } else if self_signature.is_none() {
                Some("it has no valid self-signature")
            } else {
                None
            };
            signers.push(Signer {
                fingerprint: hex(primary.fingerprint().as_bytes()),
                key_id: hex(primary.legacy_key_id().as_ref()),
                key: KeyRef::Primary(primary),
                created,
                expires: expiry(
                    created,
                    self_signature.and_then(Signature::key_expiration_time),
                ),
                problem: primary_problem.or_else(|| {
                    self_signature
                        .is_some_and(|signature| !signature.key_flags().sign())
                        .then_some("the key is not for signing")
                }),
            });
            for subkey in &key.public_subkeys {
                let sub_created = subkey.key.created_at().as_secs();
                let binding = subkey
                    .signatures
                    .iter()
                    .filter(|signature| signature.typ() == Some(SignatureType::SubkeyBinding))
                    .max_by_key(|signature| signature.created().map_or(0, |time| time.as_secs()));
                let revoked = subkey.signatures.iter().any(|signature| {
                    signature.typ() == Some(SignatureType::SubkeyRevocation)
                        && signature
                            .verify_subkey_binding(primary, &subkey.key)
                            .is_ok()
                });
                let problem = if revoked {
                    Some("the subkey is revoked")
                } else if primary_problem.is_some() {
                    primary_problem
                } else if binding.is_none_or(|binding| {
                    binding.verify_subkey_binding(primary, &subkey.key).is_err()
                }) {
                    Some("its binding to the primary key does not verify")
                } else if !binding.is_some_and(|binding| binding.key_flags().sign()) {
                    Some("the subkey is not for signing")
                } else {
                    None
                };
                signers.push(Signer {
                    fingerprint: hex(subkey.key.fingerprint().as_bytes()),
                    key_id: hex(subkey.key.legacy_key_id().as_ref()),
                    key: KeyRef::Subkey(&subkey.key),
                    created: sub_created,
                    expires: expiry(
                        sub_created,
                        binding.and_then(Signature::key_expiration_time),
                    ),
                    problem,
                });
            }
        }
        signers
    }

    /// Checks `signatures` over `data`: at least one by a valid key of the
    /// keyring, and none by a known key that fails.
    fn check(
        &self,
        signatures: &[Signature],
        data: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let signers = self.signers();
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
            });
        let mut verified = false;
        let mut refused = None;
        for signature in signatures {
            let issuers: Vec<String> = signature
                .issuer_fingerprint()
                .iter()
                .map(|fingerprint| hex(fingerprint.as_bytes()))
                .collect();
            let key_ids: Vec<String> = signature
                .issuer_key_id()
                .iter()
                .map(|id| hex(id.as_ref()))
                .collect();
            let Some(signer) = signers.iter().find(|signer| {
                issuers.contains(&signer.fingerprint) || key_ids.contains(&signer.key_id)
            }) else {
                continue;
            };
            if !signer.key.verify(signature, data) {
                return Err(SignatureError::BadSignature {
                    fingerprint: signer.fingerprint.clone(),
                });
            }
            let made = signature.created().map_or(0, |time| time.as_secs());
            let reason = if let Some(problem) = signer.problem {
                Some(problem)
            } else if matches!(
                signature.hash_alg(),
                Some(HashAlgorithm::Sha1) | Some(HashAlgorithm::Md5) | None
            ) {
                Some("it uses a weak hash (SHA-1 or MD5)")
            } else if made < signer.created {
                Some("it is older than the key")
            } else if signer
                .expires
                .is_some_and(|expires| made > expires || now > expires)
            {
                Some("the key has expired")
            } else if seconds(signature.signature_expiration_time())
                .is_some_and(|lifetime| now > made.saturating_add(lifetime))
            {
                Some("the signature has expired")
            } else {
                None
            };
            match reason {
                // Another signature may still count; this one does not.
                Some(reason) => {
                    refused.get_or_insert(SignatureError::KeyNotValid {
                        fingerprint: signer.fingerprint.clone(),
                        reason,
                    });
                }
                None => verified = true,
            }
        }
        match (verified, refused) {
            (true, _) => Ok(()),
            (false, Some(refused)) => Err(refused),
            (false, None) => Err(SignatureError::NoKnownSigner {
                keyring: self.names.join(", "),
            }),
        }
    }

    /// Verifies a cleartext-signed file (`InRelease`) and returns the text
    /// that was signed, with LF line endings; nothing else of the file counts.
    pub fn verify_cleartext(&self, text: &str, now: SystemTime) -> Result<String, SignatureError> {
        let (message, _) = CleartextSignedMessage::from_string(text)
            .map_err(|error| SignatureError::Malformed(Box::new(error)))?;
        let signed = message.signed_text();
        self.check(message.signatures(), signed.as_bytes(), now)?;
        Ok(signed.replace("\r\n", "\n"))
    }

    /// Verifies a detached signature (`Release.gpg`) over `data`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let (signatures, _) = DetachedSignature::from_reader_many(Cursor::new(signature))
            .map_err(|error| SignatureError::Malformed(Box::new(error)))?;
        let signatures = signatures
            .map(|signature| signature.map(|detached| detached.signature))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| SignatureError::Malformed(Box::new(error)))?;
        self.check(&signatures, data, now)
    }
}
