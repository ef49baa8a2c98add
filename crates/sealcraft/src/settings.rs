//! Inputs from the environment, read once here and passed down as data.

use anyhow::{Context, Result, bail};
use sealcraft_oci::image::ImageName;
use sealcraft_oci::layout::Layout;

/// `SOURCE_DATE_EPOCH`, if set.
pub(crate) fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.is_empty() => {
            let seconds: i64 = value.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")
            })?;
            if seconds < 0 {
                bail!("SOURCE_DATE_EPOCH={value:?} is before 1970");
            }
            Ok(Some(seconds))
        }
        _ => Ok(None),
    }
}

/// An `oci:DIR[:TAG]` name, opened.
pub(crate) fn open_layout_image(name: &str) -> Result<(Layout, Option<String>)> {
    match ImageName::parse(name)? {
        ImageName::Layout { path, tag } => Ok((
            Layout::open(&path).with_context(|| format!("opening {name}"))?,
            tag,
        )),
        other => bail!(
            "{other}: this command reads images from OCI layouts (oci:DIR[:TAG]); import others with `sealcraft image import`"
        ),
    }
}

/// An `oci:DIR:TAG` destination, created if missing.
pub(crate) fn output_layout(name: &str) -> Result<(Layout, String)> {
    match ImageName::parse(name)? {
        ImageName::Layout {
            path,
            tag: Some(tag),
        } => {
            sealcraft_oci::reference::Reference::parse(&format!("localhost/x:{tag}"))
                .with_context(|| format!("{tag:?} is not a valid tag"))?;
            Ok((
                Layout::open_or_create(&path).with_context(|| format!("opening {name}"))?,
                tag,
            ))
        }
        ImageName::Layout { tag: None, .. } => {
            bail!("{name}: name the output with a tag, oci:DIR:TAG")
        }
        other => bail!("{other}: outputs are OCI layouts (oci:DIR:TAG)"),
    }
}

/// The private key password: `--password-from REF`, else `COSIGN_PASSWORD`
/// (set but empty is a valid, empty password, as in cosign).
pub(crate) fn key_password(password_from: Option<&str>) -> Result<sealcraft_secrets::Secret> {
    let lookup = |name: &str| std::env::var(name).ok();
    match password_from {
        Some(reference) => Ok(sealcraft_secrets::SecretRef::parse(reference)?.resolve(lookup)?),
        None => match std::env::var("COSIGN_PASSWORD") {
            Ok(value) => Ok(sealcraft_secrets::Secret::new(value)),
            Err(_) => bail!(
                "no key password: set COSIGN_PASSWORD or pass --password-from env:NAME|file:PATH"
            ),
        },
    }
}

/// Reads and decrypts a cosign private key file.
pub(crate) fn load_private_key(
    path: &std::path::Path,
    password_from: Option<&str>,
) -> Result<sealcraft_sign::keys::PrivateKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the private key {}", path.display()))?;
    let password = key_password(password_from)?;
    sealcraft_sign::keys::PrivateKey::from_encrypted_pem(&pem, &password)
        .with_context(|| format!("loading the private key {}", path.display()))
}

/// Reads a public key file.
pub(crate) fn load_public_key(path: &std::path::Path) -> Result<sealcraft_sign::keys::PublicKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    sealcraft_sign::keys::PublicKey::from_pem(&pem)
        .with_context(|| format!("loading the public key {}", path.display()))
}
