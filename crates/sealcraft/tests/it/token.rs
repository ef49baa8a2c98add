//! Bearer-token auth: a registry configured with `auth: token`, and a token
//! issuer written for the test. The registry itself verifies the JWTs.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey;

use crate::registry::{PASSWORD, TestRegistry, USER};
use crate::support::{Item, generate_keys, make_image, sealcraft};

struct TokenIssuer {
    port: u16,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Serves `GET /token?service=…&scope=…` with Basic auth, answering ES256 JWTs
/// whose x5c header carries the signing certificate.
fn start_issuer(dir: &std::path::Path, service: &'static str) -> TokenIssuer {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "token.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            "token.key",
            "-subj",
            "/CN=sealcraft test token issuer",
            "-days",
            "2",
            "-out",
            "token.crt",
        ],
    );
    let certificate_der = openssl(dir, &["x509", "-in", "token.crt", "-outform", "DER"]);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.join("token.key")).unwrap())
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicUsize::new(0));
    let (stop_flag, issued_count) = (stop.clone(), issued.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop_flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorization = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                    break;
                }
                if let Some(value) = line
                    .strip_prefix("Authorization: ")
                    .or_else(|| line.strip_prefix("authorization: "))
                {
                    authorization = value.trim().to_owned();
                }
            }
            let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
            if authorization != expected {
                let _ = stream.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let query = target.split_once('?').map(|(_, query)| query).unwrap_or("");
            let mut access = Vec::new();
            for pair in query.split('&') {
                if let Some(scope) = pair.strip_prefix("scope=") {
                    let scope = scope
                        .replace("%3A", ":")
                        .replace("%2C", ",")
                        .replace("%2F", "/");
                    let parts: Vec<&str> = scope.split(':').collect();
                    if parts.len() == 3 {
                        access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                    }
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(&certificate_der)]});
            let claims = serde_json::json!({"iss": "sealcraft-test-issuer", "sub": USER, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{now}"), "access": access});
            let signing_input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
            let token = format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature.to_bytes())
            );
            let body =
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string();
            issued_count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
        }
    });
    TokenIssuer { port, stop, issued }
}

#[test]
fn bearer_token_flow_against_a_registry_that_verifies_the_tokens() {
    let issuer_dir = tempfile::tempdir().unwrap();
    let issuer = start_issuer(issuer_dir.path(), "sealcraft-test-registry");
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: sealcraft-test-registry\n    issuer: sealcraft-test-issuer\n    rootcertbundle: {}\n",
        issuer.port,
        issuer_dir.path().join("token.crt").display()
    );
    let registry = TestRegistry::tls_with_auth_section(&auth);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_image(
        &layout,
        "v1",
        &[vec![Item::File("hello", 0o644, 0, b"token world")]],
    );
    let keys = work.path().join("keys");
    generate_keys(&keys, "k");
    let destination = format!("{}/team/app:1.0", registry.address);
    let ca = registry.ca.display().to_string();
    let image = format!("oci:{}:v1", layout.display());
    let key = keys.join("cosign.key").display().to_string();
    let public = keys.join("cosign.pub").display().to_string();
    let common = [
        "--ca-bundle",
        ca.as_str(),
        "--registry-username",
        USER,
        "--registry-password-from",
        "env:TOKEN_TEST_PASSWORD",
    ];

    let mut publish = vec![
        "publish",
        image.as_str(),
        destination.as_str(),
        "--key",
        key.as_str(),
    ];
    publish.extend(common);
    let output = sealcraft(
        &publish,
        &[("COSIGN_PASSWORD", "k"), ("TOKEN_TEST_PASSWORD", PASSWORD)],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        issuer.issued.load(Ordering::SeqCst) >= 1,
        "no token was requested"
    );
    assert!(
        registry
            .requests()
            .iter()
            .any(|line| line.starts_with("PUT /v2/team/app/manifests/1.0 ")
                && line.ends_with(" 201"))
    );

    let mut verify = vec!["verify", destination.as_str(), "--key", public.as_str()];
    verify.extend(common);
    let output = sealcraft(&verify, &[("TOKEN_TEST_PASSWORD", PASSWORD)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The token service refuses a wrong password: a clear error, exit 2.
    let output = sealcraft(&verify, &[("TOKEN_TEST_PASSWORD", "not-the-password")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("not-the-password"));
}
