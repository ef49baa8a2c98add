//! Event shipping: syslog to a real rsyslog on loopback TCP, Loki and a
//! webhook to a receiver inside the test; failing sinks never lose the
//! local log and fail the run only when required.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::support::{make_base, sealcraft};

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_rsyslog(dir: &Path, port: u16) -> Rsyslog {
    fs::create_dir_all(dir).unwrap();
    let config = format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"mmjsonparse\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"json\")\ntemplate(name=\"jsonline\" type=\"list\") {{ property(name=\"$!all-json\") constant(value=\"\\n\") }}\nruleset(name=\"json\") {{\n  action(type=\"mmjsonparse\" cookie=\"\")\n  if $parsesuccess == \"OK\" then action(type=\"omfile\" file=\"{dir}/events.jsonl\" template=\"jsonline\")\n  else action(type=\"omfile\" file=\"{dir}/unparsed.log\")\n}}\n",
        dir = dir.display()
    );
    fs::write(dir.join("rsyslog.conf"), config).unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd is installed (scripts/test)");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rsyslogd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Rsyslog(child)
}

pub(crate) type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A tiny HTTP receiver: records (path, authorization, body) and answers 204.
pub(crate) fn start_receiver() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let (mut length, mut authorization) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    authorization = line["authorization:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            store.lock().unwrap().push((
                path,
                authorization,
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ = (&stream).write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, received)
}

fn write_project(dir: &Path, sinks: &str) -> std::path::PathBuf {
    let base_digest = make_base(&dir.join("base"));
    let config = dir.join("sealcraft.toml");
    fs::write(&config, format!("[project]\nname = \"logged\"\nversion = \"1\"\nregistry = \"registry.example.com\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[user]\nname = \"app\"\nuid = 1000\n{sinks}")).unwrap();
    config
}

#[test]
fn events_reach_syslog_loki_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let syslog_port = free_port();
    let _rsyslog = start_rsyslog(&dir.path().join("rsyslog"), syslog_port);
    let (http_port, received) = start_receiver();
    let dead_port = free_port();
    let sinks = format!(
        "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:{syslog_port}\"\n[[sinks]]\ntype = \"loki\"\nurl = \"http://127.0.0.1:{http_port}/loki/api/v1/push\"\nlabels = {{ job = \"sealcraft\" }}\n[[sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{http_port}/services/collector/event\"\nauthorization = \"env:TEST_HEC_AUTH\"\n[[sinks]]\ntype = \"file\"\npath = \"shipped.jsonl\"\n[[sinks]]\ntype = \"loki\"\nurl = \"http://127.0.0.1:{dead_port}/loki/api/v1/push\"\n"
    );
    let project = dir.path().join("project");
    let config = write_project(&project, &sinks);
    let output = sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[("TEST_HEC_AUTH", "Splunk canary-hec-token-5e1")],
    );
    assert!(
        output.status.success(),
        "a failing optional sink must not fail the run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("loki http://127.0.0.1:{dead_port}")),
        "the failing sink is reported: {stderr}"
    );

    let local: Vec<serde_json::Value> =
        fs::read_to_string(project.join("out/logged-1-amd64/events.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let run_id = local[0]["run_id"].as_str().unwrap().to_owned();
    // The file sink got every event too.
    assert_eq!(
        fs::read_to_string(project.join("shipped.jsonl"))
            .unwrap()
            .lines()
            .count(),
        local.len()
    );

    // rsyslog parsed one JSON event per message.
    let start = Instant::now();
    let syslog_file = dir.path().join("rsyslog/events.jsonl");
    let syslog_events = loop {
        let events: Vec<serde_json::Value> = fs::read_to_string(&syslog_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if events.len() >= local.len() || start.elapsed() > Duration::from_secs(10) {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(syslog_events.len(), local.len());
    assert!(
        syslog_events
            .iter()
            .all(|event| event["run_id"] == run_id.as_str())
    );
    assert!(
        syslog_events
            .iter()
            .any(|event| event["stage"] == "squash" && event["event"] == "completed")
    );

    let received = received.lock().unwrap().clone();
    let loki: Vec<&(String, String, String)> = received
        .iter()
        .filter(|(path, _, _)| path == "/loki/api/v1/push")
        .collect();
    assert_eq!(loki.len(), local.len());
    let push: serde_json::Value = serde_json::from_str(&loki[0].2).unwrap();
    assert_eq!(push["streams"][0]["stream"]["job"], "sealcraft");
    let line: serde_json::Value =
        serde_json::from_str(push["streams"][0]["values"][0][1].as_str().unwrap()).unwrap();
    assert_eq!(line["run_id"], run_id.as_str());
    let webhook: Vec<&(String, String, String)> = received
        .iter()
        .filter(|(path, _, _)| path == "/services/collector/event")
        .collect();
    assert_eq!(webhook.len(), local.len());
    assert!(
        webhook
            .iter()
            .all(|(_, authorization, _)| authorization == "Splunk canary-hec-token-5e1")
    );
    let event: serde_json::Value = serde_json::from_str(&webhook[0].2).unwrap();
    assert_eq!(event["event"]["run_id"], run_id.as_str());

    // The token is in no file the run wrote.
    for file in [
        "out/logged-1-amd64/events.jsonl",
        "out/logged-1-amd64/run.json",
        "shipped.jsonl",
    ] {
        assert!(
            !fs::read_to_string(project.join(file))
                .unwrap()
                .contains("canary-hec-token"),
            "{file}"
        );
    }
}

#[test]
fn a_required_sink_that_fails_fails_the_run_but_keeps_the_local_log() {
    let dir = tempfile::tempdir().unwrap();
    let dead_port = free_port();
    let project = dir.path().join("project");
    let config = write_project(
        &project,
        &format!(
            "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:{dead_port}\"\nrequired = true\n"
        ),
    );
    let output = sealcraft(&["run", "--config", &config.display().to_string()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("required log sink syslog"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let local = fs::read_to_string(project.join("out/logged-1-amd64/events.jsonl")).unwrap();
    assert!(
        local.lines().count() >= 8,
        "the local event log is complete: {local}"
    );
}
