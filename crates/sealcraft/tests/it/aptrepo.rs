//! Signed apt repositories made in the test: packages built with dpkg-deb,
//! indexes and Release files with apt-ftparchive, signatures with a gpg key
//! generated here, served over loopback HTTP by nginx.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{free_port, run_tool};

/// A throwaway OpenPGP key in its own GNUPGHOME.
pub(crate) struct SigningKey {
    home: PathBuf,
}

impl SigningKey {
    /// Generates an Ed25519 signing key under `dir`.
    pub(crate) fn generate(dir: &Path, name: &str) -> Self {
        let home = dir.join(format!("gnupg-{name}"));
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let key = Self { home };
        key.gpg(&[
            "--passphrase",
            "",
            "--quick-generate-key",
            &format!("{name} archive <{name}@example.invalid>"),
            "ed25519",
            "sign",
            "never",
        ]);
        key
    }

    fn gpg(&self, args: &[&str]) -> String {
        let home = self.home.display().to_string();
        let mut all = vec![
            "--homedir",
            &home,
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
        ];
        all.extend_from_slice(args);
        run_tool("gpg", &all)
    }

    /// Writes the public key as a binary keyring (what `signed-by` names).
    pub(crate) fn export(&self, path: &Path) {
        self.gpg(&["--output", &path.display().to_string(), "--export"]);
    }

    fn sign(&self, release: &Path) {
        let dir = release.parent().unwrap();
        let input = release.display().to_string();
        self.gpg(&[
            "--output",
            &dir.join("InRelease").display().to_string(),
            "--clearsign",
            &input,
        ]);
        self.gpg(&[
            "--output",
            &dir.join("Release.gpg").display().to_string(),
            "--armor",
            "--detach-sign",
            &input,
        ]);
    }
}

/// A package to build.
#[derive(Default, Clone)]
pub(crate) struct DebSpec {
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
    pub(crate) architecture: &'static str,
    /// Further control fields, one per line (`Depends: …`).
    pub(crate) fields: &'static str,
    /// Files under the root, with their content.
    pub(crate) files: Vec<(&'static str, String)>,
    /// Which of the files are conffiles.
    pub(crate) conffiles: Vec<&'static str>,
    /// Maintainer scripts (`postinst`, …) with their text.
    pub(crate) scripts: Vec<(&'static str, &'static str)>,
}

impl DebSpec {
    pub(crate) fn new(name: &'static str, version: &'static str) -> Self {
        Self {
            name,
            version,
            architecture: "amd64",
            ..Self::default()
        }
    }

    pub(crate) fn fields(mut self, fields: &'static str) -> Self {
        self.fields = fields;
        self
    }

    pub(crate) fn file(mut self, path: &'static str, content: impl Into<String>) -> Self {
        self.files.push((path, content.into()));
        self
    }

    pub(crate) fn conffile(mut self, path: &'static str, content: impl Into<String>) -> Self {
        self.conffiles.push(path);
        self.file(path, content)
    }

    pub(crate) fn script(mut self, name: &'static str, text: &'static str) -> Self {
        self.scripts.push((name, text));
        self
    }

    pub(crate) fn architecture(mut self, architecture: &'static str) -> Self {
        self.architecture = architecture;
        self
    }

    /// Builds `{name}_{version}_{arch}.deb` in `dir` (xz data, root-owned files).
    pub(crate) fn build(&self, dir: &Path) -> PathBuf {
        let version_part = self.version.replace(':', "%3a");
        let stem = format!("{}_{}_{}", self.name, version_part, self.architecture);
        let root = dir.join(format!("{stem}.tree"));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        for (path, content) in &self.files {
            let file = root.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, content).unwrap();
        }
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@example.invalid>\nInstalled-Size: 1\n",
            self.name, self.version, self.architecture
        );
        control.push_str(self.fields);
        control.push_str(&format!("Description: {} for the patch tests\n", self.name));
        fs::write(root.join("DEBIAN/control"), control).unwrap();
        if !self.conffiles.is_empty() {
            let list: String = self
                .conffiles
                .iter()
                .map(|path| format!("/{path}\n"))
                .collect();
            fs::write(root.join("DEBIAN/conffiles"), list).unwrap();
        }
        for (name, text) in &self.scripts {
            let script = root.join("DEBIAN").join(name);
            fs::write(&script, text).unwrap();
            fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let deb = dir.join(format!("{stem}.deb"));
        run_tool(
            "dpkg-deb",
            &[
                "--root-owner-group",
                "-Zxz",
                "--build",
                &root.display().to_string(),
                &deb.display().to_string(),
            ],
        );
        fs::remove_dir_all(&root).unwrap();
        deb
    }
}

/// Writes a suite `dists/{suite}` of component `main` for amd64 under
/// `root` with `packages` in its pool, indexes (plain, gz, xz) and a
/// Release file signed by `key` (InRelease and Release.gpg).
pub(crate) fn write_suite(root: &Path, suite: &str, packages: &[PathBuf], key: &SigningKey) {
    let pool = root.join("pool/main").join(suite);
    fs::create_dir_all(&pool).unwrap();
    for package in packages {
        fs::copy(package, pool.join(package.file_name().unwrap())).unwrap();
    }
    let dists = root.join("dists").join(suite);
    let binary = dists.join("main/binary-amd64");
    fs::create_dir_all(&binary).unwrap();
    let output = Command::new("apt-ftparchive")
        .current_dir(root)
        .args(["packages", &format!("pool/main/{suite}")])
        .output()
        .expect("apt-ftparchive (apt-utils) is needed by this test");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    fs::write(binary.join("Packages"), &output.stdout).unwrap();
    let packages_file = binary.join("Packages").display().to_string();
    run_tool("gzip", &["-9", "-k", "-n", "-f", &packages_file]);
    run_tool("xz", &["-k", "-f", &packages_file]);
    let release = Command::new("apt-ftparchive")
        .current_dir(&dists)
        .args([
            "-o",
            &format!("APT::FTPArchive::Release::Suite={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={suite}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "release",
            ".",
        ])
        .output()
        .unwrap();
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    let release_path = dists.join("Release");
    fs::write(&release_path, &release.stdout).unwrap();
    key.sign(&release_path);
}

/// nginx serving a directory on a loopback port (with Range support), stopped when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn serve(root: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "daemon off;\nuser root;\nworker_processes 1;\nerror_log {dir}/error.log;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {dir}/access.log;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
             fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
            dir = dir.path().display(),
            root = root.display(),
        );
        let config_path = dir.path().join("nginx.conf");
        fs::write(&config_path, config).unwrap();
        let child = Command::new("nginx")
            .args([
                "-c",
                &config_path.display().to_string(),
                "-p",
                &dir.path().display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx (nginx-light) is needed by this test");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs `packages` into an empty root with the real dpkg (no scripts
/// run: test packages have none), plus an os-release naming Debian 12.
pub(crate) fn install_root(root: &Path, packages: &[PathBuf]) {
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "etc",
        "usr/lib",
        "tmp",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    fs::write(
        root.join("usr/lib/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let mut args = vec![
        format!("--root={}", root.display()),
        "--force-bad-path".to_owned(),
        "--force-script-chrootless".to_owned(),
        "--install".to_owned(),
    ];
    args.extend(packages.iter().map(|package| package.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("dpkg", &args);
}

/// `dpkg --root=ROOT ARGS…`: output and whether it succeeded.
pub(crate) fn dpkg_in(root: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A proxy in front of a server that cuts the first response to a path
/// ending in `.deb` halfway, and records every request's first line and
/// `Range` header.
pub(crate) struct CuttingProxy {
    pub(crate) port: u16,
    pub(crate) requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CuttingProxy {
    pub(crate) fn start(upstream: u16) -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            let mut cut = false;
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let first = text.lines().next().unwrap_or("").to_owned();
                let range = text
                    .lines()
                    .find(|line| line.to_ascii_lowercase().starts_with("range:"))
                    .map(|line| format!(" [{}]", line.trim()))
                    .unwrap_or_default();
                log.lock().unwrap().push(format!("{first}{range}"));
                // One request per connection: the server closes after its answer.
                let forwarded: String = text
                    .lines()
                    .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
                    .filter(|line| !line.is_empty())
                    .map(|line| format!("{line}\r\n"))
                    .collect::<String>()
                    + "Connection: close\r\n\r\n";
                let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                server.write_all(forwarded.as_bytes()).unwrap();
                let mut response = Vec::new();
                let _ = server.read_to_end(&mut response);
                let path = first.split_whitespace().nth(1).unwrap_or("");
                if !cut && path.ends_with(".deb") && !text.to_ascii_lowercase().contains("range:") {
                    cut = true;
                    let body = response
                        .windows(4)
                        .position(|window| window == b"\r\n\r\n")
                        .map_or(0, |end| end + 4);
                    let half = body + (response.len() - body) / 2;
                    let _ = client.write_all(&response[..half]);
                } else {
                    let _ = client.write_all(&response);
                }
            }
        });
        Self { port, requests }
    }
}
