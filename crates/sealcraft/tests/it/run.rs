use std::fs;

use crate::support::{generate_keys, make_base, run_tool, sealcraft};

#[test]
fn run_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base_digest = make_base(&dir.path().join("base"));
    fs::write(dir.path().join("tool"), b"#!/bin/sh\n").unwrap();
    let config = dir.path().join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            "[project]\nname = \"svc\"\nversion = \"2.0.1\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n\n[base]\nimage = \"oci:base:base@{base_digest}\"\n\n[user]\nname = \"svc\"\nuid = 2000\n\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\nmode = \"0755\"\n\n[config]\nentrypoint = [\"/usr/local/bin/tool\"]\n"
        ),
    )
    .unwrap();
    let output = sealcraft(
        &["run", "--config", &config.display().to_string(), "--json"],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = dir.path().join("out/svc-2.0.1-amd64");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["image"], "registry.example.com/team/svc:2.0.1-amd64");
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["preflight", "build", "squash", "sbom"]);
    let sbom = &record["stages"][3];
    let names: Vec<&str> = sbom["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| output["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sbom-svc-2.0.1-amd64-cyclonedx.json",
            "sbom-svc-2.0.1-amd64-spdx.json"
        ]
    );
    assert!(
        run_dir
            .join("sbom-svc-2.0.1-amd64-cyclonedx.json")
            .is_file()
    );
    let build = &record["stages"][1];
    assert!(
        build["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|input| input["digest"] == base_digest.as_str())
    );
    assert!(
        build["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|input| input["name"].as_str().unwrap().ends_with("/tool"))
    );
    let digest = record["digest"].as_str().unwrap();
    assert_eq!(record["stages"][2]["outputs"][0]["digest"], digest);

    // The final tag is readable by skopeo and names the same digest.
    let inspect: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &[
            "inspect",
            &format!("oci:{}:2.0.1-amd64", run_dir.join("oci").display()),
        ],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);

    // Events: started/completed per stage with durations, image size and layer count.
    let events: Vec<serde_json::Value> = fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let run_id = record["run_id"].as_str().unwrap();
    assert!(
        events
            .iter()
            .all(|event| event["run_id"] == run_id && event["time"].is_string())
    );
    for stage in ["preflight", "build", "squash", "sbom"] {
        let completed = events
            .iter()
            .find(|event| event["stage"] == stage && event["event"] == "completed")
            .unwrap_or_else(|| panic!("no completed event for {stage}"));
        assert!(completed["fields"]["duration_ms"].is_u64());
    }
    let squash = events
        .iter()
        .find(|event| event["stage"] == "squash" && event["event"] == "completed")
        .unwrap();
    assert!(
        squash["fields"]["size_before_bytes"].is_u64()
            && squash["fields"]["size_after_bytes"].is_u64()
    );
    assert_eq!(squash["fields"]["layers"], 1);
    assert_eq!(events.last().unwrap()["event"], "completed");
}

#[test]
fn a_failed_run_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let base_digest = make_base(&dir.path().join("base"));
    let config = dir.path().join("sealcraft.toml");
    // The image user names nobody in the image's /etc/passwd: the build stage fails.
    fs::write(
        &config,
        format!("[project]\nname = \"svc\"\nversion = \"1\"\nregistry = \"registry.example.com\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[config]\nuser = \"ghost\"\n"),
    )
    .unwrap();
    let output = sealcraft(&["run", "--config", &config.display().to_string()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("out/svc-1-amd64/run.json")).unwrap())
            .unwrap();
    assert_eq!(record["status"], "failed");
    assert!(
        record["error"].as_str().unwrap().contains("ghost"),
        "{}",
        record["error"]
    );
    assert!(record["digest"].is_null());
}

#[test]
fn run_signs_and_publishes_as_its_last_stage() {
    let registry = crate::registry::TestRegistry::plain();
    let dir = tempfile::tempdir().unwrap();
    let base_digest = make_base(&dir.path().join("base"));
    fs::write(dir.path().join("tool"), b"#!/bin/sh\n").unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys, "run-key");
    let config = dir.path().join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            "[project]\nname = \"svc\"\nversion = \"3.1.0\"\nregistry = \"{}/team\"\narchitectures = [\"amd64\"]\n\n[base]\nimage = \"oci:base:base@{base_digest}\"\n\n[user]\nname = \"svc\"\nuid = 2000\n\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\n\n[publish]\nkey = \"keys/cosign.key\"\nkey_password = \"env:RUN_KEY_PASSWORD\"\nallow_http = [\"{}\"]\nannotations = {{ pipeline = \"test\" }}\n",
            registry.address, registry.address
        ),
    )
    .unwrap();
    let output = sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[("RUN_KEY_PASSWORD", "run-key")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("out/svc-3.1.0-amd64/run.json")).unwrap())
            .unwrap();
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["preflight", "build", "squash", "sbom", "attest", "publish"]
    );
    let digest = record["digest"].as_str().unwrap();
    let reference = format!("{}/team/svc:3.1.0-amd64", registry.address);
    let verified = sealcraft(
        &[
            "verify",
            &reference,
            "--key",
            &keys.join("cosign.pub").display().to_string(),
            "--allow-http",
            &registry.address,
            "--json",
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["digest"], digest);
    assert_eq!(report["signature"]["annotations"]["pipeline"], "test");
    let events = fs::read_to_string(dir.path().join("out/svc-3.1.0-amd64/events.jsonl")).unwrap();
    assert!(
        !events.contains("run-key"),
        "the key password reached the event log"
    );
    assert!(
        events
            .lines()
            .any(|line| line.contains("\"stage\":\"publish\"") && line.contains("\"completed\""))
    );
}

#[test]
fn a_failed_scan_gate_stops_the_run_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tarball = workspace.join("crates/inventory/tests/data/bookworm-aged.tar.gz");
    let imported = crate::support::sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", tarball.display()),
        "--output",
        &format!("oci:{}:aged", dir.path().join("base").display()),
        "--json",
    ]);
    let digest = imported["digest"].as_str().unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys, "k");
    let osv = workspace
        .join("crates/vuln/tests/data/osv")
        .canonicalize()
        .unwrap();
    let config = dir.path().join("sealcraft.toml");
    let write_config = |fail_on: &str| {
        fs::write(
            &config,
            format!(
                "[project]\nname = \"gated\"\nversion = \"1.0\"\nregistry = \"registry.example.com\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:aged@{digest}\"\n[user]\nname = \"app\"\nuid = 1000\n[scan]\ndb = \"{}\"\nfail_on = [{fail_on}]\n[publish]\nkey = \"keys/cosign.key\"\ntarget = \"oci:published\"\n",
                osv.display()
            ),
        )
        .unwrap();
    };
    // Debian findings carry no CVSS data here, so they are UNKNOWN: a gate on UNKNOWN fails.
    write_config("\"UNKNOWN\"");
    let output = sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[("COSIGN_PASSWORD", "k")],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("the scan gate failed"));
    let run_dir = dir.path().join("out/gated-1.0-amd64");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "failed");
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("scan-gated-1.0-amd64.json")).unwrap())
            .unwrap();
    assert!(
        report["Results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|result| result["Class"] == "os-pkgs")
    );
    assert!(
        !dir.path().join("published").exists(),
        "nothing may be published when the gate fails"
    );

    // A gate the findings do not reach lets the run publish.
    write_config("\"CRITICAL\"");
    let output = sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[("COSIGN_PASSWORD", "k")],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("scan-gated-1.0-amd64.json")).unwrap())
            .unwrap();
    let critical = report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|result| result["Vulnerabilities"].as_array().unwrap())
        .filter(|vulnerability| vulnerability["Severity"] == "CRITICAL")
        .count();
    if critical == 0 {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(dir.path().join("published/index.json").is_file());
    } else {
        assert_eq!(output.status.code(), Some(1));
    }
}
