use anyhow::{Context, Result, bail};
use sealcraft_cli::KeyGenerateArgs;
use sealcraft_sign::keys::PrivateKey;
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::new_key_password;

pub(crate) fn generate(args: &KeyGenerateArgs, printer: &Printer) -> Result<ExitStatus> {
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
    let password = new_key_password(args.password.password_from.as_deref())?;
    let key = PrivateKey::generate();
    let private_pem = key.to_encrypted_pem(&password)?;
    let public_pem = key.public_key().to_pem()?;
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("creating {}", args.output_dir.display()))?;
    let new_file = |mode| sealcraft_files::WriteOptions {
        mode: Some(mode),
        create_new: true,
    };
    sealcraft_files::write_atomically_with(&private_path, private_pem.as_bytes(), new_file(0o600))?;
    sealcraft_files::write_atomically_with(&public_path, public_pem.as_bytes(), new_file(0o644))?;
    printer.result(
        &json!({"private_key": private_path, "public_key": public_path}),
        &[format!(
            "wrote {} (encrypted) and {}",
            private_path.display(),
            public_path.display()
        )],
    );
    Ok(ExitStatus::Success)
}
