//! SLSA provenance from a full run: schema-valid, every field present and
//! true, each artifact signed (cosign verify-blob), the attestation pushed
//! (cosign verify-attestation --type slsaprovenance1).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::registry::TestRegistry;
use crate::support::{cosign, generate_keys, git_in, make_base, sealcraft};

fn validate(schema: &Path, document: &Path) {
    let tool = std::env::var("SEALCRAFT_PYTHON_TOOLS").map_or_else(
        |_| "check-jsonschema".to_owned(),
        |directory| format!("{directory}/check-jsonschema"),
    );
    let output = Command::new(&tool)
        .args([
            "--schemafile",
            &schema.display().to_string(),
            &document.display().to_string(),
        ])
        .output()
        .expect("check-jsonschema is installed (scripts/test)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_run_attests_signs_every_artifact_and_pushes_the_provenance() {
    let registry = TestRegistry::plain();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    fs::create_dir_all(&project).unwrap();
    let base_digest = make_base(&project.join("base"));
    fs::write(project.join("tool"), b"#!/bin/sh\n").unwrap();
    let keys = project.join("keys");
    generate_keys(&keys, "attest-pass");
    // A git checkout, so that provenance names the source commit.
    let git = |args: &[&str]| git_in(&project, args);
    git(&["init", "-q", "-b", "main"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://ci:not-a-real-token@git.example.com/team/svc.git",
    ]);
    fs::write(
        project.join("sealcraft.toml"),
        format!(
            "[project]\nname = \"svc\"\nversion = \"4.0.0\"\nregistry = \"{}/team\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[user]\nname = \"svc\"\nuid = 4000\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\n[publish]\nkey = \"keys/cosign.key\"\nallow_http = [\"{}\"]\n",
            registry.address, registry.address
        ),
    )
    .unwrap();
    git(&["add", "sealcraft.toml", "tool"]);
    git(&["commit", "-q", "-m", "source"]);
    let commit = git(&["rev-parse", "HEAD"]);

    let output = sealcraft(
        &[
            "run",
            "--config",
            &project.join("sealcraft.toml").display().to_string(),
        ],
        &[("COSIGN_PASSWORD", "attest-pass")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = project.join("out/svc-4.0.0-amd64");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let digest = record["digest"].as_str().unwrap().to_owned();
    let attestation_path = run_dir.join("attestation-svc-4.0.0-amd64.json");

    // Schemas written from the in-toto Statement v1 and SLSA provenance v1 specifications.
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/tests/schemas");
    validate(
        &schemas.join("in-toto-statement-v1.schema.json"),
        &attestation_path,
    );
    let statement: serde_json::Value =
        serde_json::from_slice(&fs::read(&attestation_path).unwrap()).unwrap();
    let predicate_path = dir.path().join("predicate.json");
    fs::write(
        &predicate_path,
        serde_json::to_vec(&statement["predicate"]).unwrap(),
    )
    .unwrap();
    validate(
        &schemas.join("slsa-provenance-v1.schema.json"),
        &predicate_path,
    );

    // Every field is present and true for this run.
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["name"],
        format!("{}/team/svc", registry.address)
    );
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        digest
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        definition["buildType"],
        "https://sealcraft.dev/buildtypes/image/v1"
    );
    let external = &definition["externalParameters"];
    assert_eq!(
        external["repository"], "git+https://git.example.com/team/svc.git",
        "credentials must be stripped from the remote"
    );
    assert_eq!(external["ref"], "refs/heads/main");
    assert_eq!(external["commit"], commit.as_str());
    assert_eq!(external["config"]["path"], "sealcraft.toml");
    assert_eq!(
        format!(
            "sha256:{}",
            external["config"]["digest"]["sha256"].as_str().unwrap()
        ),
        record["plan"]["config_digest"].as_str().unwrap()
    );
    assert_eq!(definition["internalParameters"]["architecture"], "amd64");
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    assert_eq!(dependencies[0]["digest"]["gitCommit"], commit.as_str());
    assert!(dependencies.iter().any(|dependency| format!(
        "sha256:{}",
        dependency["digest"]["sha256"].as_str().unwrap_or("")
    ) == base_digest));
    let details = &statement["predicate"]["runDetails"];
    assert_eq!(
        details["builder"]["id"],
        "https://sealcraft.dev/builders/local/v1"
    );
    assert_eq!(details["metadata"]["invocationId"], record["run_id"]);
    let byproducts: Vec<&str> = details["byproducts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|product| product["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        byproducts,
        [
            "sbom-svc-4.0.0-amd64-cyclonedx.json",
            "sbom-svc-4.0.0-amd64-spdx.json"
        ]
    );
    for product in details["byproducts"].as_array().unwrap() {
        let bytes = fs::read(run_dir.join(product["name"].as_str().unwrap())).unwrap();
        let hex = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
        assert_eq!(product["digest"]["sha256"], hex::encode(hex));
    }
    let text = fs::read_to_string(&attestation_path).unwrap();
    assert!(
        !text.contains("not-a-real-token") && !text.contains("attest-pass"),
        "a secret reached the provenance"
    );

    // cosign verify-blob accepts each .sig; cosign verify-attestation accepts the pushed provenance.
    let home = dir.path();
    let public = keys.join("cosign.pub").display().to_string();
    for artifact in [
        "sbom-svc-4.0.0-amd64-cyclonedx.json",
        "sbom-svc-4.0.0-amd64-spdx.json",
        "attestation-svc-4.0.0-amd64.json",
    ] {
        let file = run_dir.join(artifact).display().to_string();
        let signature = format!("{file}.sig");
        let verified = cosign(
            home,
            &[
                "verify-blob",
                "--key",
                &public,
                "--signature",
                &signature,
                "--insecure-ignore-tlog=true",
                &file,
            ],
            &[],
        );
        assert!(
            verified.status.success(),
            "{artifact}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    let reference = format!("{}/team/svc:4.0.0-amd64", registry.address);
    let verified = cosign(
        home,
        &[
            "verify-attestation",
            "--key",
            &public,
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            "--allow-http-registry",
            "--type",
            "slsaprovenance1",
            &reference,
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn provenance_v02_is_available_for_policies_written_against_it() {
    let registry = TestRegistry::plain();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    fs::create_dir_all(&project).unwrap();
    let base_digest = make_base(&project.join("base"));
    let keys = project.join("keys");
    generate_keys(&keys, "p");
    let git = |args: &[&str]| git_in(&project, args);
    git(&["init", "-q", "-b", "release"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://git.example.com/team/old.git",
    ]);
    fs::write(
        project.join("sealcraft.toml"),
        format!("[project]\nname = \"old\"\nversion = \"1\"\nregistry = \"{}/team\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[user]\nname = \"app\"\nuid = 1000\n[publish]\nkey = \"keys/cosign.key\"\nallow_http = [\"{}\"]\nprovenance = \"v0.2\"\n", registry.address, registry.address),
    )
    .unwrap();
    git(&["add", "sealcraft.toml"]);
    git(&["commit", "-q", "-m", "c"]);
    let commit = git(&["rev-parse", "HEAD"]);
    let output = sealcraft(
        &[
            "run",
            "--config",
            &project.join("sealcraft.toml").display().to_string(),
        ],
        &[("COSIGN_PASSWORD", "p")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let statement: serde_json::Value = serde_json::from_slice(
        &fs::read(project.join("out/old-1-amd64/attestation-old-1-amd64.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/provenance/v0.2"
    );
    let predicate = &statement["predicate"];
    assert_eq!(
        predicate["invocation"]["configSource"]["uri"],
        "git+https://git.example.com/team/old.git@refs/heads/release"
    );
    assert_eq!(
        predicate["invocation"]["configSource"]["digest"]["sha1"],
        commit.as_str()
    );
    assert_eq!(
        predicate["invocation"]["configSource"]["entryPoint"],
        "sealcraft.toml"
    );
    assert_eq!(
        predicate["builder"]["id"],
        "https://sealcraft.dev/builders/local/v1"
    );
    let reference = format!("{}/team/old:1-amd64", registry.address);
    let verified = cosign(
        dir.path(),
        &[
            "verify-attestation",
            "--key",
            &keys.join("cosign.pub").display().to_string(),
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            "--allow-http-registry",
            "--type",
            "slsaprovenance",
            &reference,
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
