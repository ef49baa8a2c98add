//! A container started in the background: its stdout and stderr kept
//! apart, signals sent through the runtime, and a deadline after which it
//! is killed. Image tests run commands and services this way.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::container::{ProcessSpec, Runtime};
use crate::{Error, Result};

/// The most output kept per stream; the rest is counted, not stored.
const OUTPUT_LIMIT: usize = 4 << 20;

/// How often a running container is looked at.
const POLL: Duration = Duration::from_millis(10);

/// How a background container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The runtime's exit code: the process's own, or 128 + the signal that ended it.
    pub code: Option<i32>,
    /// What it wrote to stdout (lossy UTF-8, at most 4 MiB).
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
    /// It was still running at the deadline and was killed.
    pub timed_out: bool,
}

/// A container running in the background; killed and deleted when dropped.
#[derive(Debug)]
pub struct Started<'a> {
    runtime: &'a Runtime,
    id: String,
    bundle: PathBuf,
    child: Child,
    status: Option<ExitStatus>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 16 << 10];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..read.min(room)]);
                }
            }
        }
        kept
    })
}

/// What a drained stream held, as text.
fn joined(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    handle
        .and_then(|handle| handle.join().ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

impl Runtime {
    /// Starts `spec` with `rootfs` as its root in the background.
    pub fn start(
        &self,
        rootfs: &Path,
        spec: &ProcessSpec,
        bundle: &Path,
        id: &str,
    ) -> Result<Started<'_>> {
        self.write_bundle(rootfs, spec, bundle)?;
        let mut command = self.command(&[
            "run".into(),
            "--bundle".into(),
            bundle.as_os_str().to_owned(),
            id.into(),
        ]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(source) => {
                let _ = fs::remove_dir_all(bundle);
                return Err(Error::Start {
                    program: self.program().to_path_buf(),
                    source,
                });
            }
        };
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Ok(Started {
            runtime: self,
            id: id.to_owned(),
            bundle: bundle.to_path_buf(),
            child,
            status: None,
            stdout,
            stderr,
        })
    }
}

impl Started<'_> {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn output_error(&self, source: std::io::Error) -> Error {
        Error::Output {
            program: self.runtime.program().to_path_buf(),
            source,
        }
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Result<bool> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|source| self.output_error(source))?;
        }
        Ok(self.status.is_some())
    }

    /// The host pid of the container's first process once its namespaces
    /// exist; `None` when it exited first or `deadline` passed.
    pub fn pid(&mut self, deadline: Instant) -> Result<Option<u32>> {
        loop {
            if self.exited()? {
                return Ok(None);
            }
            let state = self
                .runtime
                .command(&["state".into(), self.id.clone().into()])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|source| self.output_error(source))?;
            if state.status.success()
                && let Ok(state) = serde_json::from_slice::<serde_json::Value>(&state.stdout)
                && matches!(state["status"].as_str(), Some("created" | "running"))
                && let Some(pid) = state["pid"].as_u64().filter(|pid| *pid > 0)
            {
                return Ok(u32::try_from(pid).ok());
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `signal` (a name such as `SIGTERM` or `TERM`, or a number) to the container.
    pub fn signal(&mut self, signal: &str) -> Result<()> {
        if self.exited()? {
            return Ok(());
        }
        let signal = signal.strip_prefix("SIG").unwrap_or(signal);
        let outcome = self
            .runtime
            .command(&["kill".into(), self.id.clone().into(), signal.into()])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.output_error(source))?;
        // A container that exited meanwhile cannot be signalled; that is not an error.
        if !outcome.status.success() && !self.exited()? {
            return Err(self.output_error(std::io::Error::other(format!(
                "kill {signal}: {}",
                String::from_utf8_lossy(&outcome.stderr).trim()
            ))));
        }
        Ok(())
    }

    /// Runs `spec`'s args, env, working directory and user as one more
    /// process in the running container (a health check), killed at `deadline`.
    pub fn exec(&mut self, spec: &ProcessSpec, deadline: Instant) -> Result<Finished> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "exec".into(),
            "--cwd".into(),
            spec.cwd.clone().into(),
            "--user".into(),
            format!("{}:{}", spec.uid, spec.gid).into(),
        ];
        for variable in &spec.env {
            args.push("--env".into());
            args.push(variable.into());
        }
        // Everything after the id is the command, flags included.
        args.push(self.id.clone().into());
        args.extend(spec.args.iter().map(Into::into));
        let mut child = self
            .runtime
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.output_error(source))?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|source| self.output_error(source))?
            {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = child.kill();
                break child.wait().map_err(|source| self.output_error(source))?;
            }
            std::thread::sleep(POLL);
        };
        Ok(Finished {
            code: if timed_out { None } else { status.code() },
            stdout: joined(stdout),
            stderr: joined(stderr),
            timed_out,
        })
    }

    /// Waits until it exits or `deadline` passes; whether it exited.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<bool> {
        loop {
            if self.exited()? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `deadline`, kills it if it is still running, and
    /// collects its outputs.
    pub fn finish(mut self, deadline: Instant) -> Result<Finished> {
        let timed_out = !self.wait_until(deadline)?;
        if timed_out {
            self.signal("KILL")?;
            self.wait_until(Instant::now() + Duration::from_secs(10))?;
        }
        let status = match self.status {
            Some(status) => status,
            None => self
                .child
                .wait()
                .map_err(|source| self.output_error(source))?,
        };
        self.status = Some(status);
        let stdout = joined(self.stdout.take());
        let stderr = joined(self.stderr.take());
        Ok(Finished {
            code: status.code(),
            stdout,
            stderr,
            timed_out,
        })
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if self.status.is_none() && !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self
                .runtime
                .command(&["kill".into(), self.id.clone().into(), "KILL".into()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = self.child.wait();
        }
        let _ = self
            .runtime
            .command(&["delete".into(), "--force".into(), self.id.clone().into()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The bundle's config holds the environment: never leave it behind.
        let _ = fs::remove_dir_all(&self.bundle);
    }
}
