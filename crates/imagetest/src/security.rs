//! The built-in `security` suite: what a production image must not have
//! or do, each check with a stable code. Static checks read the merged
//! view; the user and read-only root checks run the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealcraft_elf::ImageFiles;
use sealcraft_inventory::Accounts;
use sealcraft_oci::layer::EntryKind;
use sealcraft_oci::view::MergedView;

use crate::metadata::ConfigFields;
use crate::report::TestResult;
use crate::sandbox::{Launch, Sandbox};
use crate::services::image_argv;
use crate::{Error, Result};

sealcraft_findings::codes! {
    /// The checks of the security suite.
    pub enum SecurityCode: domain "image-security", subject "check" {
        /// A package manager is in the image.
        PackageManager = "security-package-manager": "a package manager (apt, dpkg, yum, dnf, apk, rpm, …) is in the image",
        /// The image runs as root.
        RootUser = "security-root-user": "the image's user is root, unknown, or runs as uid 0",
        /// The config env looks like it holds a secret.
        SecretEnv = "security-secret-env": "a config env variable has a secret-like name or a high-entropy value",
        /// The entrypoint fails with a read-only root.
        WritableRoot = "security-writable-root": "the entrypoint fails when the root filesystem is read-only",
        /// A library an ELF object needs is not in the image.
        UnresolvedLibrary = "security-unresolved-library": "an ELF object's DT_NEEDED does not resolve inside the image",
        /// A setuid or setgid file is in the image.
        Setuid = "security-setuid": "a file is setuid or setgid and not allowed to be",
        /// A world-writable path outside /tmp.
        WorldWritable = "security-world-writable": "a file or non-sticky directory outside /tmp is world-writable",
    }
}

/// What the suite allows and how long it watches.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// pip and npm count as package managers too.
    pub language_package_managers: bool,
    /// Paths allowed to be setuid or setgid.
    pub allow_setuid: Vec<String>,
    /// How long the entrypoint must survive with a read-only root.
    pub read_only_grace: Duration,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        Self {
            language_package_managers: false,
            allow_setuid: Vec::new(),
            read_only_grace: Duration::from_secs(2),
        }
    }
}

const PACKAGE_MANAGERS: [&str; 8] = [
    "apt", "apt-get", "dpkg", "yum", "dnf", "microdnf", "apk", "rpm",
];
const LANGUAGE_MANAGERS: [&str; 4] = ["pip", "pip3", "npm", "npx"];
const BIN_DIRS: [&str; 6] = [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];
const SECRET_WORDS: [&str; 6] = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"];

fn result(code: SecurityCode, check: &str, errors: Vec<String>, started: Instant) -> TestResult {
    let mut result = TestResult::new(format!("Security Test: {check}"), errors, started.elapsed());
    result.code = Some(code);
    result
}

/// Where the program `name` is on the image's PATH directories: the path
/// found (what to run, so multi-call binaries see their name) and its real
/// path (symlinks followed, what to report).
pub(crate) fn find_program(view: &MergedView, name: &str) -> Option<(String, String)> {
    BIN_DIRS.iter().find_map(|directory| {
        let path = Path::new(directory).join(name);
        view.resolve(&path)
            .filter(|(_, node)| matches!(node.meta.kind, EntryKind::File | EntryKind::HardLink(_)))
            .map(|(real, _)| {
                (
                    format!("/{}", path.display()),
                    format!("/{}", real.display()),
                )
            })
    })
}

fn package_managers(view: &MergedView, options: &SecurityOptions) -> TestResult {
    let started = Instant::now();
    let mut names: Vec<&str> = PACKAGE_MANAGERS.to_vec();
    if options.language_package_managers {
        names.extend(LANGUAGE_MANAGERS);
    }
    let errors = names
        .iter()
        .filter_map(|name| find_program(view, name))
        .map(|(_, real)| format!("package manager {real} is in the image"))
        .collect();
    result(
        SecurityCode::PackageManager,
        "no package managers",
        errors,
        started,
    )
}

/// Shannon entropy in bits per character.
fn entropy(text: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for character in text.chars() {
        *counts.entry(character).or_default() += 1;
    }
    let length = text.chars().count() as f64;
    counts
        .values()
        .map(|count| {
            let share = *count as f64 / length;
            -share * share.log2()
        })
        .sum()
}

/// A value shaped like a generated credential: long, one token of
/// base64/hex-like characters with letters and digits, and high entropy.
fn looks_generated(value: &str) -> bool {
    value.len() >= 20
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.'))
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && !value.contains("//")
        && entropy(value) >= 4.0
}

fn secret_env(fields: &ConfigFields<'_>) -> TestResult {
    let started = Instant::now();
    let mut errors = Vec::new();
    for (name, value) in fields.env() {
        let upper = name.to_ascii_uppercase();
        // Values are never quoted: the report must not become the leak.
        if let Some(word) = SECRET_WORDS.iter().find(|word| upper.contains(*word)) {
            errors.push(format!(
                "env var {name} has a secret-like name (contains {word}); pass secrets at run time"
            ));
        } else if looks_generated(&value) {
            errors.push(format!(
                "env var {name} has a high-entropy value like a credential (not shown)"
            ));
        }
    }
    result(
        SecurityCode::SecretEnv,
        "no secrets in the config env",
        errors,
        started,
    )
}

fn unresolved_libraries(view: &MergedView) -> Result<TestResult> {
    let started = Instant::now();
    let objects = sealcraft_inventory::elf_objects(view).map_err(|(path, source)| Error::Read {
        path: format!("/{}", path.display()),
        source,
    })?;
    let conf_dirs = sealcraft_inventory::loader_conf_dirs(view);
    let resolve = |path: &Path| -> Option<PathBuf> { view.resolve(path).map(|(real, _)| real) };
    let files = ImageFiles {
        objects: &objects,
        resolve: &resolve,
        conf_dirs: &conf_dirs,
    };
    let (_, unresolved) = files.closure(&objects.keys().cloned().collect::<Vec<_>>());
    let mut errors: Vec<String> = unresolved
        .iter()
        .map(|entry| {
            format!(
                "{} needs {}, which is not in the image",
                entry.object, entry.needed
            )
        })
        .collect();
    for (path, info) in &objects {
        if let Some(interpreter) = &info.interpreter
            && resolve(Path::new(interpreter.trim_start_matches('/'))).is_none()
        {
            errors.push(format!(
                "/{} needs the loader {interpreter}, which is not in the image",
                path.display()
            ));
        }
    }
    Ok(result(
        SecurityCode::UnresolvedLibrary,
        "every ELF dependency resolves",
        errors,
        started,
    ))
}

fn special_modes(view: &MergedView, options: &SecurityOptions) -> (TestResult, TestResult) {
    let started = Instant::now();
    let mut setuid = Vec::new();
    let mut writable = Vec::new();
    for (path, node) in view.iter() {
        let shown = format!("/{}", path.display());
        let mode = node.meta.mode;
        match &node.meta.kind {
            EntryKind::File | EntryKind::HardLink(_) => {
                if mode & 0o6000 != 0 && !options.allow_setuid.contains(&shown) {
                    setuid.push(format!(
                        "{shown} is {}{}",
                        if mode & 0o4000 != 0 { "setuid" } else { "" },
                        if mode & 0o2000 != 0 {
                            if mode & 0o4000 != 0 {
                                " and setgid"
                            } else {
                                "setgid"
                            }
                        } else {
                            ""
                        }
                    ));
                }
                if mode & 0o002 != 0 && !path.starts_with("tmp") {
                    writable.push(format!(
                        "{shown} is world-writable (mode {:04o})",
                        mode & 0o7777
                    ));
                }
            }
            EntryKind::Directory
                if mode & 0o002 != 0 && mode & 0o1000 == 0 && !path.starts_with("tmp") =>
            {
                writable.push(format!(
                    "directory {shown} is world-writable without the sticky bit (mode {:04o})",
                    mode & 0o7777
                ));
            }
            _ => {}
        }
    }
    (
        result(
            SecurityCode::Setuid,
            "no setuid or setgid files",
            setuid,
            started,
        ),
        result(
            SecurityCode::WorldWritable,
            "no world-writable files outside /tmp",
            writable,
            started,
        ),
    )
}

fn non_root(
    sandbox: Option<&Sandbox>,
    view: &MergedView,
    accounts: &Accounts,
    fields: &ConfigFields<'_>,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<TestResult> {
    let started = Instant::now();
    let user = fields.text("User");
    let mut errors = Vec::new();
    let uid = match accounts.check_non_root(Some(&user)) {
        Ok(uid) => Some(uid),
        Err(error) => {
            errors.push(format!("{error}"));
            None
        }
    };
    if let (Some(uid), Some(sandbox)) = (uid, sandbox)
        && let Some((id, _)) = find_program(view, "id")
    {
        let root = sandbox.root()?;
        let launch = Launch {
            args: vec![id.clone(), "-u".into()],
            env: env.clone(),
            network_none: true,
            ..Launch::default()
        };
        let finished = sandbox.run(&root, &launch, Instant::now() + timeout)?;
        let said = finished.stdout.trim();
        if finished.code != Some(0) || said != uid.to_string() {
            errors.push(format!(
                "`{id} -u` in the image said {said:?} (exit {:?}), expected {uid}",
                finished.code
            ));
        }
    }
    Ok(result(
        SecurityCode::RootUser,
        "runs as non-root",
        errors,
        started,
    ))
}

fn read_only_root(
    sandbox: &Sandbox,
    fields: &ConfigFields<'_>,
    env: &BTreeMap<String, String>,
    grace: Duration,
) -> Result<TestResult> {
    let started = Instant::now();
    let args = image_argv(fields, None);
    if args.is_empty() {
        return Ok(result(
            SecurityCode::WritableRoot,
            "starts with a read-only root",
            vec!["the image has neither an entrypoint nor a cmd to start".into()],
            started,
        ));
    }
    let root = sandbox.root()?;
    let launch = Launch {
        args: args.clone(),
        env: env.clone(),
        network_none: true,
        readonly_root: true,
        volumes: true,
        ..Launch::default()
    };
    let mut container = sandbox.start(&root, &launch)?;
    let exited = container
        .wait_until(Instant::now() + grace)
        .map_err(Error::Runtime)?;
    let finished = container.finish(Instant::now()).map_err(Error::Runtime)?;
    let mut errors = Vec::new();
    if exited && finished.code != Some(0) {
        errors.push(format!(
            "{args:?} exited with {} within {}s under a read-only root: {}",
            finished
                .code
                .map_or_else(|| "no code".to_owned(), |code| code.to_string()),
            grace.as_secs(),
            finished.stderr.trim()
        ));
    }
    let mut result = result(
        SecurityCode::WritableRoot,
        "starts with a read-only root",
        errors,
        started,
    );
    if !result.pass {
        result.stderr = finished.stderr;
    }
    Ok(result)
}

/// Runs the suite; the dynamic checks need `sandbox`.
pub(crate) fn run(
    view: &MergedView,
    accounts: &Accounts,
    fields: &ConfigFields<'_>,
    sandbox: &Sandbox,
    options: &SecurityOptions,
    timeout: Duration,
) -> Result<Vec<TestResult>> {
    let env = fields.env();
    let (setuid, writable) = special_modes(view, options);
    Ok(vec![
        package_managers(view, options),
        non_root(Some(sandbox), view, accounts, fields, &env, timeout)?,
        secret_env(fields),
        read_only_root(sandbox, fields, &env, options.read_only_grace)?,
        unresolved_libraries(view)?,
        setuid,
        writable,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_told_from_ordinary_ones() {
        assert!(looks_generated("ghp_8fK2mQ9xLz4Rt7Vb1Nc6Yd3Hs5Jw0Pa"));
        assert!(looks_generated("AKIA4QX7EXAMPLE9ZK2MRT5B"));
        for ordinary in [
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "8080",
            "production",
            "en_US.UTF-8",
            "1.2.3-alpha.4567890123",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
        ] {
            assert!(!looks_generated(ordinary), "{ordinary}");
        }
    }
}
