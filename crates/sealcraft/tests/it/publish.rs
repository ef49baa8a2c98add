//! Publishing to a real registry: signed before pushed, readable by cosign.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::registry::{PASSWORD, TestRegistry, USER};
use crate::support::{ErrorCase, Item, cosign, make_image, sealcraft};

const KEY_PASSWORD: &str = "key-pass-for-tests";

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({:?}): {}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Fixture {
    dir: tempfile::TempDir,
    image: String,
    digest: String,
    key: String,
    public: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let descriptor = make_image(
        &layout,
        "v1",
        &[
            vec![
                Item::Dir("app", 0o755, 0),
                Item::File("app/run", 0o755, 0, b"#!/bin/sh\n"),
            ],
            vec![Item::File("app/data", 0o644, 0, b"data")],
        ],
    );
    let keys = dir.path().join("keys");
    ok(
        &sealcraft(
            &[
                "key",
                "generate",
                "--output-dir",
                &keys.display().to_string(),
            ],
            &[("COSIGN_PASSWORD", KEY_PASSWORD)],
        ),
        "key generate",
    );
    fs::write(dir.path().join("provenance.json"), br#"{"buildDefinition":{"buildType":"https://example.com/test"},"runDetails":{"builder":{"id":"https://example.com/builder"}}}"#).unwrap();
    Fixture {
        image: format!("oci:{}:v1", layout.display()),
        digest: descriptor.digest.to_string(),
        key: keys.join("cosign.key").display().to_string(),
        public: keys.join("cosign.pub").display().to_string(),
        dir,
    }
}

fn tls_args(registry: &TestRegistry) -> Vec<String> {
    vec![
        "--ca-bundle".into(),
        registry.ca.display().to_string(),
        "--registry-username".into(),
        USER.into(),
        "--registry-password-from".into(),
        "env:TEST_REGISTRY_PASSWORD".into(),
    ]
}

fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sealcraft(&args, env)
}

#[test]
fn publish_signs_before_pushing_and_cosign_accepts_it() {
    let registry = TestRegistry::tls_with_auth();
    let fixture = fixture();
    let destination = format!("{}/demo/app:v1", registry.address);
    let mut args: Vec<String> = vec![
        "publish".into(),
        fixture.image.clone(),
        destination.clone(),
        "--key".into(),
        fixture.key.clone(),
        "--json".into(),
    ];
    args.extend([
        "--attestation".into(),
        format!(
            "slsaprovenance1={}",
            fixture.dir.path().join("provenance.json").display()
        ),
    ]);
    args.extend(tls_args(&registry));
    let output = run(
        &args,
        &[
            ("COSIGN_PASSWORD", KEY_PASSWORD),
            ("TEST_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    let stdout = ok(&output, "publish");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains(PASSWORD)
            && !stderr.contains(PASSWORD)
            && !stdout.contains(KEY_PASSWORD)
            && !stderr.contains(KEY_PASSWORD),
        "a password leaked"
    );

    // The access log: the signature manifest is stored before the image manifest, then the tag, then attestations.
    let hex = fixture.digest.trim_start_matches("sha256:");
    let requests = registry.requests();
    let position = |needle: &str| {
        requests
            .iter()
            .position(|line| line.starts_with(needle) && line.ends_with(" 201"))
            .unwrap_or_else(|| panic!("no successful {needle} in {requests:#?}"))
    };
    let signature = position(&format!("PUT /v2/demo/app/manifests/sha256-{hex}.sig "));
    let manifest = position(&format!("PUT /v2/demo/app/manifests/{} ", fixture.digest));
    let tag = position("PUT /v2/demo/app/manifests/v1 ");
    let attestation = position(&format!("PUT /v2/demo/app/manifests/sha256-{hex}.att "));
    assert!(
        signature < manifest && manifest < tag && tag < attestation,
        "wrong order: {requests:#?}"
    );

    // cosign verifies the signature and the SLSA v1 attestation.
    let home = fixture.dir.path();
    let ca = registry.ca.display().to_string();
    let cosign_env = [("SSL_CERT_FILE", ca.as_str())];
    let auth = ["--registry-username", USER, "--registry-password", PASSWORD];
    let mut verify_args = vec![
        "verify",
        "--key",
        &fixture.public,
        "--insecure-ignore-tlog=true",
    ];
    verify_args.extend(auth);
    verify_args.push(&destination);
    ok(&cosign(home, &verify_args, &cosign_env), "cosign verify");
    let mut attestation_args = vec![
        "verify-attestation",
        "--key",
        &fixture.public,
        "--insecure-ignore-tlog=true",
        "--type",
        "slsaprovenance1",
    ];
    attestation_args.extend(auth);
    attestation_args.push(&destination);
    ok(
        &cosign(home, &attestation_args, &cosign_env),
        "cosign verify-attestation",
    );

    // sealcraft verifies it too, by tag and by digest; another key does not.
    let mut verify: Vec<String> = vec![
        "verify".into(),
        destination.clone(),
        "--key".into(),
        fixture.public.clone(),
        "--attestation-type".into(),
        "slsaprovenance1".into(),
        "--json".into(),
    ];
    verify.extend(tls_args(&registry));
    let report: serde_json::Value = serde_json::from_str(&ok(
        &run(&verify, &[("TEST_REGISTRY_PASSWORD", PASSWORD)]),
        "sealcraft verify",
    ))
    .unwrap();
    assert_eq!(report["digest"], fixture.digest.as_str());
    assert_eq!(
        report["signature"]["docker_reference"],
        destination.as_str()
    );
    verify[1] = format!("{}/demo/app@{}", registry.address, fixture.digest);
    ok(
        &run(&verify, &[("TEST_REGISTRY_PASSWORD", PASSWORD)]),
        "sealcraft verify by digest",
    );
    let other_keys = fixture.dir.path().join("other");
    ok(
        &sealcraft(
            &[
                "key",
                "generate",
                "--output-dir",
                &other_keys.display().to_string(),
            ],
            &[("COSIGN_PASSWORD", "x")],
        ),
        "key generate",
    );
    verify[1] = destination.clone();
    verify[3] = other_keys.join("cosign.pub").display().to_string();
    let rejected = run(&verify, &[("TEST_REGISTRY_PASSWORD", PASSWORD)]);
    assert_eq!(
        rejected.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );

    // Publishing again adds no second signature by the same key.
    let again = run(
        &args,
        &[
            ("COSIGN_PASSWORD", KEY_PASSWORD),
            ("TEST_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    ok(&again, "second publish");
    let signature_manifest =
        fs::read(registry.blob_path(&signature_manifest_digest(&registry, hex))).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&signature_manifest).unwrap();
    assert_eq!(parsed["layers"].as_array().unwrap().len(), 1);
}

/// The digest the `.sig` tag points at, read from the registry's storage.
fn signature_manifest_digest(registry: &TestRegistry, hex: &str) -> String {
    let link = registry.dir.path().join(format!("data/docker/registry/v2/repositories/demo/app/_manifests/tags/sha256-{hex}.sig/current/link"));
    fs::read_to_string(link).unwrap().trim().to_owned()
}

#[test]
fn images_signed_and_attested_by_cosign_verify_in_sealcraft() {
    let registry = TestRegistry::plain();
    let fixture = fixture();
    let http = ["--allow-http".to_owned(), registry.address.clone()];
    let destination = format!("{}/demo/cosigned:v1", registry.address);
    let mut publish: Vec<String> = vec![
        "publish".into(),
        fixture.image.clone(),
        destination.clone(),
        "--key".into(),
        fixture.key.clone(),
    ];
    publish.extend(http.clone());
    ok(
        &run(&publish, &[("COSIGN_PASSWORD", KEY_PASSWORD)]),
        "publish",
    );

    let home = fixture.dir.path();
    let theirs = fixture.dir.path().join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    let generated = std::process::Command::new(
        std::env::var("SEALCRAFT_COSIGN").unwrap_or_else(|_| "cosign".into()),
    )
    .arg("generate-key-pair")
    .current_dir(&theirs)
    .env("HOME", home)
    .env("COSIGN_PASSWORD", "theirs")
    .output()
    .unwrap();
    ok(&generated, "cosign generate-key-pair");
    let their_key = theirs.join("cosign.key").display().to_string();
    let their_pub = theirs.join("cosign.pub").display().to_string();
    let by_digest = format!("{}/demo/cosigned@{}", registry.address, fixture.digest);
    let insecure = ["--allow-insecure-registry", "--allow-http-registry"];
    let mut sign = vec![
        "sign",
        "--yes",
        "--key",
        &their_key,
        "--tlog-upload=false",
        "-a",
        "pipeline=test",
    ];
    sign.extend(insecure);
    sign.push(&by_digest);
    ok(
        &cosign(home, &sign, &[("COSIGN_PASSWORD", "theirs")]),
        "cosign sign",
    );
    let predicate = fixture
        .dir
        .path()
        .join("provenance.json")
        .display()
        .to_string();
    let mut attest = vec![
        "attest",
        "--yes",
        "--key",
        &their_key,
        "--tlog-upload=false",
        "--type",
        "slsaprovenance1",
        "--predicate",
        &predicate,
    ];
    attest.extend(insecure);
    attest.push(&by_digest);
    ok(
        &cosign(home, &attest, &[("COSIGN_PASSWORD", "theirs")]),
        "cosign attest",
    );

    for public in [&their_pub, &fixture.public] {
        let mut verify: Vec<String> = vec![
            "verify".into(),
            destination.clone(),
            "--key".into(),
            public.clone(),
        ];
        verify.extend(http.clone());
        ok(
            &run(&verify, &[]),
            "sealcraft verify (both signatures are kept)",
        );
    }
    let mut verify: Vec<String> = vec![
        "verify".into(),
        destination.clone(),
        "--key".into(),
        their_pub.clone(),
        "--attestation-type".into(),
        "slsaprovenance1".into(),
    ];
    verify.extend(http.clone());
    ok(
        &run(&verify, &[]),
        "sealcraft verify of cosign's attestation",
    );
    // sealcraft's key made no attestation.
    verify[3] = fixture.public.clone();
    assert_eq!(run(&verify, &[]).status.code(), Some(1));
}

#[test]
fn tampering_with_anything_signed_makes_verify_fail() {
    let registry = TestRegistry::plain();
    let fixture = fixture();
    let http = ["--allow-http".to_owned(), registry.address.clone()];
    let destination = format!("{}/demo/tamper:v1", registry.address);
    let mut publish: Vec<String> = vec![
        "publish".into(),
        fixture.image.clone(),
        destination.clone(),
        "--key".into(),
        fixture.key.clone(),
        "--attestation".into(),
    ];
    publish.push(format!(
        "slsaprovenance1={}",
        fixture.dir.path().join("provenance.json").display()
    ));
    publish.extend(http.clone());
    ok(
        &run(&publish, &[("COSIGN_PASSWORD", KEY_PASSWORD)]),
        "publish",
    );
    let mut verify: Vec<String> = vec![
        "verify".into(),
        destination.clone(),
        "--key".into(),
        fixture.public.clone(),
        "--attestation-type".into(),
        "slsaprovenance1".into(),
    ];
    verify.extend(http);
    ok(&run(&verify, &[]), "verify before tampering");

    let hex = fixture.digest.trim_start_matches("sha256:");
    let storage = |tag: &str| {
        let link = registry.dir.path().join(format!(
            "data/docker/registry/v2/repositories/demo/tamper/_manifests/tags/{tag}/current/link"
        ));
        fs::read_to_string(link).unwrap().trim().to_owned()
    };
    let signature_manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(registry.blob_path(&storage(&format!("sha256-{hex}.sig")))).unwrap(),
    )
    .unwrap();
    let attestation_manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(registry.blob_path(&storage(&format!("sha256-{hex}.att")))).unwrap(),
    )
    .unwrap();
    // The signature itself is the annotation value inside the .sig manifest.
    let signature_path = registry.blob_path(&storage(&format!("sha256-{hex}.sig")));
    let signature_bytes = fs::read(&signature_path).unwrap();
    let signature_value =
        signature_manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap();
    let signature_start = String::from_utf8_lossy(&signature_bytes)
        .find(signature_value)
        .unwrap();
    let targets = [
        ("image manifest", registry.blob_path(&fixture.digest), None),
        (
            "signature payload",
            registry.blob_path(signature_manifest["layers"][0]["digest"].as_str().unwrap()),
            None,
        ),
        (
            "signature",
            signature_path,
            Some(signature_start..signature_start + signature_value.len()),
        ),
        (
            "attestation envelope",
            registry.blob_path(
                attestation_manifest["layers"][0]["digest"]
                    .as_str()
                    .unwrap(),
            ),
            None,
        ),
    ];
    // Deterministic pseudo-random positions, several per artifact.
    let mut state: u64 = 0x5ea1_c4af;
    for (what, path, range) in &targets {
        let original = fs::read(path).unwrap();
        let range = range.clone().unwrap_or(0..original.len());
        for _ in 0..4 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let position = range.start + usize::try_from(state >> 33).unwrap() % range.len();
            let mut tampered = original.clone();
            tampered[position] ^= 1 << ((state >> 20) % 8);
            fs::write(path, &tampered).unwrap();
            let output = run(&verify, &[]);
            assert_ne!(
                output.status.code(),
                Some(0),
                "{what}: flipping byte {position} went unnoticed"
            );
            fs::write(path, &original).unwrap();
        }
        ok(&run(&verify, &[]), "verify after restoring");
    }
}

#[test]
fn publish_failures_are_clear_and_never_leave_an_unsigned_tag() {
    let registry = TestRegistry::tls_with_auth();
    let fixture = fixture();
    let destination = format!("{}/demo/fail:v1", registry.address);
    let base: Vec<String> = vec![
        "publish".into(),
        fixture.image.clone(),
        destination.clone(),
        "--key".into(),
        fixture.key.clone(),
    ];
    let with = |extra: &[String]| {
        let mut args = base.clone();
        args.extend(extra.iter().cloned());
        args
    };
    let ca = registry.ca.display().to_string();
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            with(&tls_args(&registry)),
            vec![
                ("COSIGN_PASSWORD", KEY_PASSWORD),
                ("TEST_REGISTRY_PASSWORD", "wrong-password"),
            ],
            "authentication failed",
        ),
        (
            with(&["--ca-bundle".into(), ca.clone()]),
            vec![("COSIGN_PASSWORD", KEY_PASSWORD)],
            "no credentials are configured",
        ),
        (
            with(&[
                "--registry-username".into(),
                USER.into(),
                "--registry-password-from".into(),
                "env:TEST_REGISTRY_PASSWORD".into(),
            ]),
            vec![
                ("COSIGN_PASSWORD", KEY_PASSWORD),
                ("TEST_REGISTRY_PASSWORD", PASSWORD),
            ],
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            with(&tls_args(&registry)),
            vec![
                ("COSIGN_PASSWORD", "wrong-key-password"),
                ("TEST_REGISTRY_PASSWORD", PASSWORD),
            ],
            "wrong password",
        ),
    ];
    let mut missing_key = with(&tls_args(&registry));
    missing_key[4] = fixture.dir.path().join("missing.key").display().to_string();
    let cases = cases.into_iter().chain([(
        missing_key,
        vec![
            ("COSIGN_PASSWORD", KEY_PASSWORD),
            ("TEST_REGISTRY_PASSWORD", PASSWORD),
        ],
        "missing.key",
    )]);
    for (args, env, expected) in cases {
        let output = run(&args, &env);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains(PASSWORD) && !stderr.contains(KEY_PASSWORD),
            "a password leaked: {stderr}"
        );
    }
    // An unreachable registry.
    let unreachable = format!("127.0.0.1:{}/demo/fail:v1", crate::registry::free_port());
    let mut args = base.clone();
    args[2] = unreachable;
    let output = run(&args, &[("COSIGN_PASSWORD", KEY_PASSWORD)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach"));
    // The failed attempts reached the registry (the log holds them: a wrong
    // password answered 401), and none of them stored a manifest.
    let requests = registry.requests();
    assert!(
        requests.iter().any(|line| line.ends_with(" 401")),
        "the registry's log shows no refused attempt: {requests:#?}"
    );
    assert!(
        !requests.iter().any(|line| line.contains("/manifests/")
            && line.starts_with("PUT")
            && line.ends_with(" 201")),
        "{requests:#?}"
    );
    let _ = Path::new(&ca);
}

#[test]
fn an_oci_layout_is_a_destination_too() {
    let fixture = fixture();
    let target = fixture.dir.path().join("published");
    let destination = format!("oci:{}:release", target.display());
    let provenance = format!(
        "slsaprovenance1={}",
        fixture.dir.path().join("provenance.json").display()
    );
    ok(
        &sealcraft(
            &[
                "publish",
                &fixture.image,
                &destination,
                "--key",
                &fixture.key,
                "--attestation",
                &provenance,
            ],
            &[("COSIGN_PASSWORD", KEY_PASSWORD)],
        ),
        "publish to a layout",
    );
    ok(
        &sealcraft(
            &[
                "verify",
                &destination,
                "--key",
                &fixture.public,
                "--attestation-type",
                "slsaprovenance1",
            ],
            &[],
        ),
        "verify in the layout",
    );
    let hex = fixture.digest.trim_start_matches("sha256:");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(target.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    for expected in [
        "release",
        &format!("sha256-{hex}.sig"),
        &format!("sha256-{hex}.att"),
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    crate::support::run_tool(
        "skopeo",
        &["inspect", &format!("oci:{}:release", target.display())],
    );

    // A signature layer that cannot be read decides nothing: verify fails
    // with an error (exit 2), not a rejection (exit 1) that hides the fault.
    let signatures = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"]
                == format!("sha256-{hex}.sig").as_str()
        })
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(target.join("blobs/sha256").join(&signatures)).unwrap())
            .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    fs::remove_file(
        target
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let broken = sealcraft(&["verify", &destination, "--key", &fixture.public], &[]);
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("fetching {layer}")), "{stderr}");
}

#[test]
fn an_image_index_is_signed_with_every_platform_image() {
    use sealcraft_oci::layout::Layout;
    use sealcraft_oci::manifest::{Index, Platform, media_type};

    let registry = TestRegistry::plain();
    let fixture = fixture();
    let layout_dir = fixture.dir.path().join("multi");
    let amd64 = make_image(
        &layout_dir,
        "amd64",
        &[vec![Item::File("arch", 0o644, 0, b"amd64")]],
    );
    let arm64 = make_image(
        &layout_dir,
        "arm64",
        &[vec![Item::File("arch", 0o644, 0, b"arm64")]],
    );
    let layout = Layout::open(&layout_dir).unwrap();
    let mut index = Index::new_oci();
    for (descriptor, architecture) in [(amd64.clone(), "amd64"), (arm64.clone(), "arm64")] {
        let mut entry = descriptor;
        entry.annotations.clear();
        entry.platform = Some(Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: None,
            os_version: None,
        });
        index.manifests.push(entry);
    }
    let index_descriptor = layout
        .put_json("index", media_type::OCI_INDEX, &index)
        .unwrap();
    layout.tag("multi", &index_descriptor).unwrap();

    let destination = format!("{}/demo/multi:v1", registry.address);
    let http = ["--allow-http", registry.address.as_str()];
    let mut publish = vec!["publish", "--key", fixture.key.as_str()];
    let image = format!("oci:{}:multi", layout_dir.display());
    publish.extend([image.as_str(), destination.as_str()]);
    publish.extend(http);
    ok(
        &sealcraft(&publish, &[("COSIGN_PASSWORD", KEY_PASSWORD)]),
        "publish an index",
    );

    // The index and each platform image verify, by tag and by digest, in sealcraft and cosign.
    let by_digest = |digest: &str| format!("{}/demo/multi@{digest}", registry.address);
    for reference in [
        destination.clone(),
        by_digest(index_descriptor.digest.as_ref()),
        by_digest(amd64.digest.as_ref()),
        by_digest(arm64.digest.as_ref()),
    ] {
        let mut verify = vec![
            "verify",
            reference.as_str(),
            "--key",
            fixture.public.as_str(),
        ];
        verify.extend(http);
        ok(&sealcraft(&verify, &[]), &format!("verify {reference}"));
    }
    ok(
        &cosign(
            fixture.dir.path(),
            &[
                "verify",
                "--key",
                &fixture.public,
                "--insecure-ignore-tlog=true",
                "--allow-insecure-registry",
                "--allow-http-registry",
                &destination,
            ],
            &[],
        ),
        "cosign verify of the index",
    );
    // Every platform signature was stored before its manifest.
    let requests = registry.requests();
    for digest in [&amd64.digest, &arm64.digest, &index_descriptor.digest] {
        let position = |needle: String| {
            requests
                .iter()
                .position(|line| line.starts_with(&needle))
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(
            position(format!(
                "PUT /v2/demo/multi/manifests/sha256-{}.sig ",
                digest.digest()
            )) < position(format!("PUT /v2/demo/multi/manifests/{digest} "))
        );
    }
}
