use std::io::Write;

use anyhow::{Context, Result, bail};
use sealcraft_cli::KeyGenerateArgs;
use sealcraft_sign::keys::PrivateKey;
use serde_json::json;

use crate::output::Printer;
use crate::settings::key_password;

pub(crate) fn generate(args: &KeyGenerateArgs, printer: &Printer) -> Result<()> {
    let private_path = args.output_dir.join("cosign.key");
    let public_path = args.output_dir.join("cosign.pub");
    for path in [&private_path, &public_path] {
        if path.exists() {
            bail!(
                "{} already exists; move it away first (keys are never overwritten)",
                path.display()
            );
        }
    }
    let password = key_password(args.password.password_from.as_deref())?;
    let key = PrivateKey::generate();
    let private_pem = key.to_encrypted_pem(&password)?;
    let public_pem = key.public_key().to_pem()?;
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("creating {}", args.output_dir.display()))?;
    write_new(&private_path, private_pem.as_bytes(), 0o600)?;
    write_new(&public_path, public_pem.as_bytes(), 0o644)?;
    printer.result(
        &json!({"private_key": private_path, "public_key": public_path}),
        &[format!(
            "wrote {} (encrypted) and {}",
            private_path.display(),
            public_path.display()
        )],
    );
    Ok(())
}

/// Creates a file that must not exist yet, with `mode` from the start.
fn write_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
