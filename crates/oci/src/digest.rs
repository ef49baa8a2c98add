//! Content digests: parsing, computing, and hashing while streaming.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256, Sha512};

pub use oci_spec::image::{Digest, DigestAlgorithm};

use crate::error::{Error, Result};

/// Parses `algorithm:hex`, accepting only the algorithms sealcraft can verify.
pub fn parse_digest(text: &str) -> Result<Digest> {
    let digest = Digest::try_from(text).map_err(|source| Error::InvalidDigest {
        digest: text.to_owned(),
        source,
    })?;
    match digest.algorithm() {
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha512 => Ok(digest),
        other => Err(Error::UnsupportedDigestAlgorithm {
            algorithm: other.to_string(),
        }),
    }
}

/// The sha256 digest of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    sha256_from_hex(&hex::encode(Sha256::digest(bytes)))
}

fn sha256_from_hex(hex_value: &str) -> Digest {
    Digest::try_from(format!("sha256:{hex_value}"))
        .unwrap_or_else(|_| unreachable!("a sha256 hex string is always a valid digest"))
}

/// A hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher that computes digests of the same algorithm as `digest`.
    pub fn for_digest(digest: &Digest) -> Result<Self> {
        match digest.algorithm() {
            DigestAlgorithm::Sha256 => Ok(Self::Sha256(Sha256::new())),
            DigestAlgorithm::Sha512 => Ok(Self::Sha512(Sha512::new())),
            other => Err(Error::UnsupportedDigestAlgorithm {
                algorithm: other.to_string(),
            }),
        }
    }

    /// A sha256 hasher.
    pub fn sha256() -> Self {
        Self::Sha256(Sha256::new())
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// The digest of everything added so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex_value) = match self {
            Self::Sha256(hasher) => ("sha256", hex::encode(hasher.finalize())),
            Self::Sha512(hasher) => ("sha512", hex::encode(hasher.finalize())),
        };
        Digest::try_from(format!("{algorithm}:{hex_value}"))
            .unwrap_or_else(|_| unreachable!("hex output of a known algorithm is a valid digest"))
    }
}

/// A writer that hashes (sha256) and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::sha256(),
            written: 0,
        }
    }

    /// The digest and size of what was written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.written, self.inner)
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what is read through it and, at end of stream, fails
/// unless the content matched the expected digest and size.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: u64,
    read: u64,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must yield exactly `expected_size` bytes hashing to `expected`.
    pub fn new(inner: R, expected: &Digest, expected_size: u64) -> Result<Self> {
        Ok(Self {
            inner,
            hasher: Some(Hasher::for_digest(expected)?),
            expected: expected.clone(),
            expected_size,
            read: 0,
        })
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never hand out more than the descriptor promised.
        let remaining = self.expected_size.saturating_sub(self.read);
        let limit = buf
            .len()
            .min(usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let count = self.inner.read(&mut buf[..limit])?;
        if count > 0 {
            self.read += count as u64;
            if self.read > self.expected_size {
                return Err(mismatch_error(
                    &self.expected,
                    self.expected_size,
                    self.read,
                    "(longer than declared)",
                ));
            }
            if let Some(hasher) = self.hasher.as_mut() {
                hasher.update(&buf[..count]);
            }
            return Ok(count);
        }
        if let Some(hasher) = self.hasher.take() {
            let actual = hasher.finish();
            if actual != self.expected || self.read != self.expected_size {
                return Err(mismatch_error(
                    &self.expected,
                    self.expected_size,
                    self.read,
                    actual.as_ref(),
                ));
            }
        }
        Ok(0)
    }
}

fn mismatch_error(
    expected: &Digest,
    expected_size: u64,
    actual_size: u64,
    actual: &str,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::BlobMismatch {
            digest: expected.to_string(),
            expected_size,
            actual_size,
            actual_digest: actual.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad_digests() {
        for bad in [
            "sha256:abc",
            "sha256:",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "nocolon",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            assert!(parse_digest(bad).is_err(), "{bad} should be refused");
        }
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert!(parse_digest(&sha512).is_ok());
    }

    #[test]
    fn verifying_reader_accepts_exact_content_and_refuses_others() {
        let digest = sha256_of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], &digest, 5)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        for (content, size) in [
            (&b"hellp"[..], 5),
            (&b"hello!"[..], 5),
            (&b"hell"[..], 5),
            (&b"hello"[..], 4),
        ] {
            let mut out = Vec::new();
            let err = VerifyingReader::new(content, &digest, size)
                .unwrap()
                .read_to_end(&mut out);
            assert!(err.is_err(), "{content:?}/{size} must fail");
        }
    }
}
