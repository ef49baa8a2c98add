//! Key passwords from a person: asked for on the terminal (twice for a new
//! key, without echo) when no other source is given; refused, as before,
//! when there is no terminal to ask on.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

use crate::support::sealcraft;

/// A pseudo-terminal: the controller side for the test, the terminal for the child.
fn terminal() -> (File, OwnedFd) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let child = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .unwrap();
    (File::from(controller), child)
}

/// Runs `args` with stdin and stderr on a terminal, answering each prompt
/// with the next of `answers`; returns the exit code and what the terminal showed.
fn on_terminal(args: &[&str], answers: &[&str]) -> (Option<i32>, String) {
    let (controller, terminal) = terminal();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealcraft"))
        .args(args)
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut reader = controller.try_clone().unwrap();
    let collected = Arc::clone(&shown);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        // The read ends with an error once the child's side closes.
        while let Ok(count) = reader.read(&mut buffer) {
            if count == 0 {
                break;
            }
            collected
                .lock()
                .unwrap()
                .extend_from_slice(&buffer[..count]);
        }
    });
    let mut controller = controller;
    for (index, answer) in answers.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
            if text.matches("Enter password").count() > index {
                break;
            }
            assert!(Instant::now() < deadline, "no prompt {index}: {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        controller
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
    }
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    (status.code(), text)
}

#[test]
fn a_new_key_asks_for_its_password_twice_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_arg = keys.display().to_string();
    let password = "tty-typed-pass-31f9";
    let (code, shown) = on_terminal(
        &["key", "generate", "--output-dir", &keys_arg],
        &[password, password],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("Enter password for private key: "),
        "{shown}"
    );
    assert!(
        shown.contains("Enter password for private key again: "),
        "{shown}"
    );
    assert!(
        !shown.contains(password),
        "the password was echoed: {shown:?}"
    );
    // The key opens with the password typed.
    let file = dir.path().join("blob");
    std::fs::write(&file, "signed").unwrap();
    let signed = sealcraft(
        &[
            "sign-blob",
            "--key",
            &keys.join("cosign.key").display().to_string(),
            &file.display().to_string(),
        ],
        &[("COSIGN_PASSWORD", password)],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    // A key being used is asked for once.
    let (code, shown) = on_terminal(
        &[
            "sign-blob",
            "--key",
            &keys.join("cosign.key").display().to_string(),
            &file.display().to_string(),
        ],
        &[password],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("Enter password").count(), 1, "{shown}");
}

#[test]
fn two_different_answers_write_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (code, shown) = on_terminal(
        &[
            "key",
            "generate",
            "--output-dir",
            &keys.display().to_string(),
        ],
        &["first-answer", "second-answer"],
    );
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("the two passwords differ"), "{shown}");
    assert!(!keys.join("cosign.key").exists() && !keys.join("cosign.pub").exists());
}

#[test]
fn without_a_terminal_the_password_is_refused_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sealcraft"))
        .args(["key", "generate", "--output-dir"])
        .arg(dir.path())
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no key password: set COSIGN_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.path().join("cosign.key").exists());
}
