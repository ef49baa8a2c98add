//! Checks against vectors made by cosign 2.5, skopeo 1.18, openssl and two
//! independent implementations (see tests/data).

use std::collections::BTreeMap;
use std::path::Path;

use sealcraft_oci::digest::{parse_digest, sha256_of};
use sealcraft_oci::manifest::{Descriptor, Manifest};
use sealcraft_sign::artifacts::{attest_image, sign_image, verify_attestations, verify_signatures};
use sealcraft_sign::dsse::{Envelope, Statement, pae};
use sealcraft_sign::keys::{PrivateKey, PublicKey};
use sealcraft_sign::payload::SimpleSigning;
use sealcraft_sign::{Error, Secret, sign_blob, verify_blob};

const SUBJECT: &str = "sha256:40b14d31bef03c25dc0870e2ab6af5898d62145dbcf7ad7dfe26de4aa4ad65c7";

fn data(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn text(path: &str) -> String {
    String::from_utf8(data(path)).unwrap()
}

fn password(path: &str) -> Secret {
    Secret::new(text(path).trim_end_matches('\n'))
}

fn public(path: &str) -> PublicKey {
    PublicKey::from_pem(&text(path)).unwrap()
}

#[test]
fn key_files_of_every_producer_decrypt() {
    let cases = [
        (
            "keys/cosign25.key",
            "keys/cosign25.password",
            "keys/cosign25.pub",
        ),
        (
            "keys/skopeo118.private",
            "keys/skopeo118.password",
            "keys/skopeo118.pub",
        ),
        (
            "keys/pyimpl-sigstore-label.key",
            "keys/pyimpl-and-rust.password",
            "keys/pyimpl-sigstore-label.pub",
        ),
        (
            "keys/pyimpl-cosign-label.key",
            "keys/pyimpl-and-rust.password",
            "keys/pyimpl-cosign-label.pub",
        ),
        (
            "keys/rust-keyproto.key",
            "keys/pyimpl-and-rust.password",
            "keys/rust-keyproto.pub",
        ),
    ];
    for (key, pass, public_key) in cases {
        let private = PrivateKey::from_encrypted_pem(&text(key), &password(pass))
            .unwrap_or_else(|error| panic!("{key}: {error}"));
        assert_eq!(private.public_key(), public(public_key), "{key}");
        let error = PrivateKey::from_encrypted_pem(&text(key), &Secret::new("wrong")).unwrap_err();
        assert!(matches!(error, Error::WrongPassword), "{key}: {error}");
    }
}

#[test]
fn generated_keys_round_trip_and_refuse_other_labels() {
    let key = PrivateKey::generate();
    let pem = key.to_encrypted_pem(&Secret::new("pass")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
    let read = PrivateKey::from_encrypted_pem(&pem, &Secret::new("pass")).unwrap();
    assert_eq!(read.public_key(), key.public_key());
    let public_pem = key.public_key().to_pem().unwrap();
    assert!(
        public_pem.starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    );
    let plain = pem.replace("ENCRYPTED COSIGN PRIVATE KEY", "EC PRIVATE KEY");
    assert!(matches!(
        PrivateKey::from_encrypted_pem(&plain, &Secret::new("pass")),
        Err(Error::UnsupportedKeyLabel { .. })
    ));
    // The empty password is legal, as in cosign.
    let empty = key.to_encrypted_pem(&Secret::new("")).unwrap();
    assert!(PrivateKey::from_encrypted_pem(&empty, &Secret::new("")).is_ok());
}

#[test]
fn blob_signatures_of_cosign_and_openssl_verify() {
    let blob = data("blob/blob.txt");
    verify_blob(
        &public("keys/pyimpl-sigstore-label.pub"),
        &blob,
        &text("blob/cosign25-sign-blob-sigstorelabel.sig"),
    )
    .unwrap();
    verify_blob(
        &public("keys/cosign25.pub"),
        &blob,
        &text("blob/openssl-with-cosign25-key.sig"),
    )
    .unwrap();
    verify_blob(
        &public("keys/cosign25.pub"),
        &blob,
        &text("blob/rust-keyproto-with-cosign25-key.sig"),
    )
    .unwrap();
    assert!(
        verify_blob(
            &public("keys/rust-keyproto.pub"),
            &blob,
            &text("blob/openssl-with-cosign25-key.sig")
        )
        .is_err()
    );
    let mut other = blob.clone();
    other.push(b'!');
    assert!(
        verify_blob(
            &public("keys/cosign25.pub"),
            &other,
            &text("blob/openssl-with-cosign25-key.sig")
        )
        .is_err()
    );

    let key = PrivateKey::from_encrypted_pem(
        &text("keys/cosign25.key"),
        &password("keys/cosign25.password"),
    )
    .unwrap();
    let signature = sign_blob(&key, &blob).unwrap();
    verify_blob(&public("keys/cosign25.pub"), &blob, &signature).unwrap();
}

#[test]
fn pae_and_payload_bytes_match_the_references() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    let envelope = Envelope::parse(&data("cosign25-att/envelope.json")).unwrap();
    let payload = envelope.verify(&public("keys/cosign25.pub")).unwrap();
    assert_eq!(
        pae(&envelope.payload_type, &payload),
        data("cosign25-att/pae.bin")
    );
    let openssl = Envelope::parse(&data("dsse-openssl/envelope.json")).unwrap();
    openssl
        .verify(&PublicKey::from_pem(&text("dsse-openssl/pub.pem")).unwrap())
        .unwrap();

    let payload = SimpleSigning::new("127.0.0.1:5000/demo/real", SUBJECT, &BTreeMap::new());
    assert_eq!(payload.to_bytes(), data("cosign25-sig/payload-layer0.json"));
    assert_eq!(
        SimpleSigning::parse(&data("cosign25-sig/payload-layer0.json")).unwrap(),
        payload
    );
    assert_eq!(payload.repository(), "127.0.0.1:5000/demo/real");
}

fn blobs() -> BTreeMap<String, Vec<u8>> {
    let mut map = BTreeMap::new();
    for path in [
        "cosign25-sig/payload-layer0.json",
        "cosign25-sig/payload-layer1-with-optional.json",
        "cosign25-att/envelope.json",
    ] {
        let bytes = data(path);
        map.insert(sha256_of(&bytes).to_string(), bytes);
    }
    map
}

fn fetch(
    map: &BTreeMap<String, Vec<u8>>,
) -> impl FnMut(&Descriptor) -> sealcraft_sign::Result<Vec<u8>> + '_ {
    |descriptor| {
        Ok(map
            .get(&descriptor.digest.to_string())
            .cloned()
            .expect("blob present"))
    }
}

#[test]
fn cosign_signatures_and_attestations_verify() {
    let map = blobs();
    let subject = parse_digest(SUBJECT).unwrap();
    let manifest: Manifest =
        serde_json::from_slice(&data("cosign25-sig/sig-manifest-2layers.json")).unwrap();
    let verified = verify_signatures(
        &manifest,
        &public("keys/cosign25.pub"),
        &subject,
        Some("127.0.0.1:5000/demo/real"),
        &mut fetch(&map),
    )
    .unwrap();
    assert_eq!(verified.digest, SUBJECT);
    let second = verify_signatures(
        &manifest,
        &public("keys/rust-keyproto.pub"),
        &subject,
        None,
        &mut fetch(&map),
    )
    .unwrap();
    assert_eq!(
        second.annotations.get("build"),
        Some(&serde_json::json!("42"))
    );
    let other_digest = parse_digest(&format!("sha256:{}", "1".repeat(64))).unwrap();
    assert!(
        verify_signatures(
            &manifest,
            &public("keys/cosign25.pub"),
            &other_digest,
            None,
            &mut fetch(&map)
        )
        .is_err()
    );
    assert!(
        verify_signatures(
            &manifest,
            &public("keys/skopeo118.pub"),
            &subject,
            None,
            &mut fetch(&map)
        )
        .is_err()
    );
    assert!(
        verify_signatures(
            &manifest,
            &public("keys/cosign25.pub"),
            &subject,
            Some("127.0.0.1:5000/demo/other"),
            &mut fetch(&map)
        )
        .is_err()
    );

    let attestations: Manifest =
        serde_json::from_slice(&data("cosign25-att/att-manifest.json")).unwrap();
    let verified = verify_attestations(
        &attestations,
        &public("keys/cosign25.pub"),
        &subject,
        "https://slsa.dev/provenance/v1",
        &mut fetch(&map),
    )
    .unwrap();
    assert_eq!(verified.len(), 1);
    assert!(
        verify_attestations(
            &attestations,
            &public("keys/cosign25.pub"),
            &subject,
            "https://slsa.dev/provenance/v0.2",
            &mut fetch(&map)
        )
        .is_err()
    );
    assert!(
        verify_attestations(
            &attestations,
            &public("keys/rust-keyproto.pub"),
            &subject,
            "https://slsa.dev/provenance/v1",
            &mut fetch(&map)
        )
        .is_err()
    );
}

#[test]
fn signing_appends_without_losing_existing_signatures() {
    let subject = parse_digest(SUBJECT).unwrap();
    let existing: Manifest =
        serde_json::from_slice(&data("cosign25-sig/sig-manifest-1layer.json")).unwrap();
    let key = PrivateKey::generate();
    let signed = sign_image(
        &key,
        "127.0.0.1:5000/demo/real:v1",
        &subject,
        &BTreeMap::new(),
        Some(&existing),
    )
    .unwrap();
    assert!(signed.changed);
    assert_eq!(signed.manifest.layers.len(), 2);
    assert_eq!(signed.manifest.layers[0], existing.layers[0]);
    // Signing again with the same key adds nothing.
    let again = sign_image(
        &key,
        "127.0.0.1:5000/demo/real:v1",
        &subject,
        &BTreeMap::new(),
        Some(&signed.manifest),
    )
    .unwrap();
    assert!(!again.changed);
    assert_eq!(again.bytes, signed.bytes);
    let mut map = blobs();
    for (digest, bytes) in &signed.blobs {
        map.insert(digest.to_string(), bytes.clone());
    }
    verify_signatures(
        &signed.manifest,
        &key.public_key(),
        &subject,
        Some("127.0.0.1:5000/demo/real"),
        &mut fetch(&map),
    )
    .unwrap();
    verify_signatures(
        &signed.manifest,
        &public("keys/cosign25.pub"),
        &subject,
        None,
        &mut fetch(&map),
    )
    .unwrap();

    let statement = Statement::for_image(
        "127.0.0.1:5000/demo/real",
        subject.digest(),
        "https://slsa.dev/provenance/v1",
        serde_json::json!({"buildDefinition": {}}),
    );
    let attested = attest_image(&key, &statement, None).unwrap();
    for (digest, bytes) in &attested.blobs {
        map.insert(digest.to_string(), bytes.clone());
    }
    verify_attestations(
        &attested.manifest,
        &key.public_key(),
        &subject,
        "https://slsa.dev/provenance/v1",
        &mut fetch(&map),
    )
    .unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn flipping_any_byte_breaks_verification(position in 0usize..10_000, bit in 0u8..8) {
        let key = PrivateKey::generate();
        let subject = parse_digest(SUBJECT).unwrap();
        let signed = sign_image(&key, "r.example.com/app:1", &subject, &BTreeMap::new(), None).unwrap();
        let payload = signed.blobs[0].1.clone();
        let signature = signed.manifest.layers[0].annotations["dev.cosignproject.cosign/signature"].clone();
        let mut signature_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &signature).unwrap();

        let mut tampered_payload = payload.clone();
        let index = position % tampered_payload.len();
        tampered_payload[index] ^= 1 << bit;
        proptest::prop_assert!(key.public_key().verify(&tampered_payload, &signature_bytes).is_err());

        let index = position % signature_bytes.len();
        signature_bytes[index] ^= 1 << bit;
        proptest::prop_assert!(key.public_key().verify(&payload, &signature_bytes).is_err());

        let statement = Statement::for_image("r.example.com/app", subject.digest(), "https://slsa.dev/provenance/v1", serde_json::json!({}));
        let envelope = Envelope::sign(&key, "application/vnd.in-toto+json", &statement.to_bytes()).unwrap().to_bytes();
        let mut tampered = envelope.clone();
        let index = position % tampered.len();
        tampered[index] ^= 1 << bit;
        let still_valid = Envelope::parse(&tampered).ok().and_then(|envelope| envelope.verify(&key.public_key()).ok());
        // A flip may only survive where it changes nothing that is signed (e.g. inside the unauthenticated keyid).
        if let Some(payload) = still_valid {
            proptest::prop_assert_eq!(payload, statement.to_bytes());
        }
    }
}
