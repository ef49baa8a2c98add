use anyhow::{Context, Result};
use sealcraft_cli::{SignBlobArgs, VerifyBlobArgs};
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{load_public_key, load_signer, signing_key};

pub(crate) fn sign_blob(args: &SignBlobArgs, printer: &Printer) -> Result<ExitStatus> {
    let content =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let signer = load_signer(
        &signing_key(&args.key),
        args.password.password_from.as_deref(),
    )?;
    let signature = sealcraft_sign::sign_blob(signer.as_ref(), &content)
        .with_context(|| format!("signing {}", args.file.display()))?;
    if let Some(path) = &args.output_signature {
        sealcraft_files::write_atomically(path, format!("{signature}\n").as_bytes())?;
    }
    printer.data(&signature);
    Ok(ExitStatus::Success)
}

pub(crate) fn verify_blob(args: &VerifyBlobArgs, printer: &Printer) -> Result<ExitStatus> {
    let content =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let signature = std::fs::read_to_string(&args.signature)
        .with_context(|| format!("reading {}", args.signature.display()))?;
    let key = load_public_key(&args.key)?;
    if let Err(error) = sealcraft_sign::verify_blob(&key, &content, &signature) {
        return Ok(printer.rejected(&format!("{}: {error}", args.file.display())));
    }
    printer.result(
        &json!({"verified": true, "file": args.file}),
        &["Verified OK".to_owned()],
    );
    Ok(ExitStatus::Success)
}
