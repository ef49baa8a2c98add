//! One full run (registry with TLS and auth, S3 upload, log sinks, signing)
//! whose secrets are unique canary strings: none of them may appear in any
//! file the run wrote, in what the registry, the bucket and the sinks
//! received, in the output, or in the arguments of any process of the run.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::registry::{PASSWORD as REGISTRY_PASSWORD, TestRegistry, USER, free_port};
use crate::sinks::start_receiver;
use crate::support::{EPOCH, make_base, sealcraft};
use crate::upload::{ACCESS_KEY, S3Server, SECRET_KEY as S3_SECRET, walk};

const KEY_PASSWORD: &str = "canary-key-password-4f2a";
const WEBHOOK_TOKEN: &str = "canary-webhook-token-a7c3";

/// The command lines of `root` and its descendants, as /proc shows them now.
fn process_tree_arguments(root: u32) -> Vec<String> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised name.
        let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        if let Some(parent) = after_name
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
        {
            parents.push((pid, parent));
        }
    }
    let mut tree = BTreeSet::from([root]);
    loop {
        let before = tree.len();
        for (pid, parent) in &parents {
            if tree.contains(parent) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    tree.iter()
        .filter_map(|pid| fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .collect()
}

#[test]
fn no_secret_of_a_full_run_leaks_anywhere() {
    let registry = TestRegistry::tls_with_auth();
    let dir = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let s3 = S3Server::start(&dir.path().join("s3"), s3_port);
    let (sink_port, received) = start_receiver();
    let project = dir.path().join("project");
    let base_digest = make_base(&project.join("base"));
    fs::write(project.join("tool"), b"#!/bin/sh\n").unwrap();
    let generated = sealcraft(
        &[
            "key",
            "generate",
            "--output-dir",
            &project.join("keys").display().to_string(),
            "--password-from",
            "env:CANARY_KEY_PASSWORD",
        ],
        &[("CANARY_KEY_PASSWORD", KEY_PASSWORD)],
    );
    assert!(generated.status.success());
    let config = project.join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            "[project]\nname = \"canary\"\nversion = \"1.0.0\"\nregistry = \"{registry}/team\"\narchitectures = [\"amd64\"]\n\
             [base]\nimage = \"oci:base:base@{base_digest}\"\n\
             [user]\nname = \"app\"\nuid = 1000\n\
             [[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\n\
             [publish]\nkey = \"keys/cosign.key\"\nkey_password = \"env:CANARY_KEY_PASSWORD\"\nca_bundle = \"{ca}\"\nusername = \"{USER}\"\npassword = \"env:CANARY_REGISTRY_PASSWORD\"\n\
             [upload]\nurl = \"s3://artifacts/canary\"\nendpoint = \"http://127.0.0.1:{s3_port}\"\nallow_http = true\naccess_key_id = \"env:CANARY_S3_KEY\"\nsecret_access_key = \"env:CANARY_S3_SECRET\"\n\
             [[sinks]]\ntype = \"file\"\npath = \"shipped.jsonl\"\n\
             [[sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{sink_port}/hook\"\nauthorization = \"env:CANARY_WEBHOOK_TOKEN\"\n",
            registry = registry.address,
            ca = registry.ca.display(),
        ),
    )
    .unwrap();

    // Run, watching the arguments of every process of the run meanwhile.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealcraft"))
        .args(["run", "--config", &config.display().to_string()])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("CANARY_KEY_PASSWORD", KEY_PASSWORD)
        .env("CANARY_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
        .env("CANARY_S3_KEY", ACCESS_KEY)
        .env("CANARY_S3_SECRET", S3_SECRET)
        .env("CANARY_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut arguments_seen = BTreeSet::new();
    while child.try_wait().unwrap().is_none() {
        arguments_seen.extend(process_tree_arguments(child.id()));
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        arguments_seen
            .iter()
            .any(|line| line.contains(" run --config ")),
        "the watcher saw the run: {arguments_seen:?}"
    );

    // The run really used every secret: the image is in the registry behind
    // auth, the artifacts are in the bucket, the webhook got events with the token.
    assert!(
        registry
            .requests()
            .iter()
            .any(|line| line.contains("PUT /v2/team/canary/manifests/")),
        "nothing was pushed"
    );
    let objects = walk(&s3.root.join("artifacts"));
    assert!(objects.len() >= 6, "uploaded: {objects:?}");
    let deliveries = received.lock().unwrap().clone();
    assert!(
        deliveries
            .iter()
            .any(|(path, authorization, _)| path == "/hook" && authorization == WEBHOOK_TOKEN),
        "the webhook sink delivered nothing"
    );

    // Now look everywhere for the canaries.
    let canaries = [KEY_PASSWORD, REGISTRY_PASSWORD, S3_SECRET, WEBHOOK_TOKEN];
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for root in [
        project.join("out"),
        s3.root.clone(),
        registry.dir.path().join("data"),
    ] {
        for file in walk(&root) {
            places.push((file.display().to_string(), fs::read(&file).unwrap()));
        }
    }
    let shipped = project.join("shipped.jsonl");
    places.push((shipped.display().to_string(), fs::read(&shipped).unwrap()));
    places.push(("stdout".into(), output.stdout.clone()));
    places.push(("stderr".into(), output.stderr.clone()));
    for (path, _, body) in &deliveries {
        places.push((format!("webhook body {path}"), body.clone().into_bytes()));
    }
    for line in &arguments_seen {
        places.push(("process arguments".into(), line.clone().into_bytes()));
    }
    assert!(
        places.len() > 20,
        "too few places searched: {}",
        places.len()
    );
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for canary in canaries {
            assert!(!text.contains(canary), "{canary} leaked into {place}");
        }
    }
}
