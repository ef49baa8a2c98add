//! A real distribution registry (Debian `docker-registry`) for tests: TLS
//! with a CA made here, htpasswd auth or none, on a free loopback port.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "tester";
pub(crate) const PASSWORD: &str = "s3cret-registry-pass";

pub(crate) struct TestRegistry {
    pub(crate) address: String,
    pub(crate) ca: PathBuf,
    pub(crate) dir: tempfile::TempDir,
    log: PathBuf,
    child: Child,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sealcraft test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    /// TLS and htpasswd auth (bcrypt), as a production registry would have.
    pub(crate) fn tls_with_auth() -> Self {
        Self::start(true, Some(""))
    }

    /// TLS with the given `auth:` section (token auth).
    pub(crate) fn tls_with_auth_section(auth: &str) -> Self {
        Self::start(true, Some(auth))
    }

    /// Plain HTTP, no auth.
    pub(crate) fn plain() -> Self {
        Self::start(false, None)
    }

    fn start(tls: bool, auth: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: info, formatter: text}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {address}\n  secret: test-only-secret\n",
            root.join("data").display()
        );
        if tls {
            make_certificates(root);
            config.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                root.join("server.crt").display(),
                root.join("server.key").display()
            ));
        }
        match auth {
            Some("") => {
                let output = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd (apache2-utils) is installed");
                assert!(output.status.success());
                fs::write(root.join("htpasswd"), &output.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd: {{realm: sealcraft-test, path: {}}}\n",
                    root.join("htpasswd").display()
                ));
            }
            Some(extra) => config.push_str(extra),
            None => {}
        }
        fs::write(root.join("config.yml"), config).unwrap();
        let log = root.join("registry.log");
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("docker-registry is installed (scripts/test installs it)");
        let registry = Self {
            address,
            ca: root.join("ca.crt"),
            log,
            child,
            dir,
        };
        let start = Instant::now();
        while TcpStream::connect(&registry.address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the registry did not start: {}",
                fs::read_to_string(&registry.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Where the registry keeps the blob with `digest` (filesystem driver).
    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The access log lines (`"METHOD URI HTTP/1.1" STATUS`), in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_else(|error| {
                panic!("reading the registry log {}: {error}", self.log.display())
            })
            .lines()
            .filter_map(|line| {
                let start = line.find("] \"")? + 3;
                let end = line[start..].find('"')? + start;
                let status = line[end + 1..].split_whitespace().next().unwrap_or("");
                Some(format!("{} {status}", &line[start..end]))
            })
            .collect()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
