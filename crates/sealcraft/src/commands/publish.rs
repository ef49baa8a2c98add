use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use sealcraft_cli::{PublishArgs, RegistryArgs, VerifyArgs};
use sealcraft_oci::image::ImageName;
use sealcraft_oci::layout::Layout;
use sealcraft_pipeline::publish::{
    Destination, PublishRequest, VerifyOutcome, publish as publish_image, verify as verify_image,
};
use sealcraft_registry::Client;
use sealcraft_sign::dsse::predicate_type_uri;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{
    RegistryAccess, load_public_key, load_signer, open_layout_image, registry_client, signing_key,
};

/// A parsed destination: registry parts or a layout, and the tag or digest.
enum Target {
    Registry {
        registry: String,
        repository: String,
        reference: String,
    },
    Layout {
        path: std::path::PathBuf,
        reference: String,
    },
}

fn parse_target(text: &str, require_tag: bool) -> Result<Target> {
    match ImageName::parse(text)? {
        ImageName::Registry(reference) => {
            let pointer = match (reference.tag(), reference.digest()) {
                (_, Some(digest)) if !require_tag => digest.to_string(),
                (Some(tag), _) => tag.to_owned(),
                _ => bail!("{text}: name a tag (HOST/REPO:TAG); `latest` is not implied"),
            };
            Ok(Target::Registry {
                registry: reference.registry().to_owned(),
                repository: reference.repository().to_owned(),
                reference: pointer,
            })
        }
        ImageName::Layout {
            path,
            tag: Some(tag),
        } => Ok(Target::Layout {
            path,
            reference: tag,
        }),
        ImageName::Layout { tag: None, .. } => bail!("{text}: name a tag, oci:DIR:TAG"),
        other => bail!(
            "{other}: images are published to a registry (HOST/REPO:TAG) or an OCI layout (oci:DIR:TAG)"
        ),
    }
}

/// A registry client from the command-line flags.
fn client_for(args: &RegistryArgs, registry: &str) -> Result<Client> {
    registry_client(&RegistryAccess {
        registry,
        ca_bundle: args.ca_bundle.as_deref(),
        allow_http: &args.allow_http,
        username: args.registry_username.as_deref(),
        password_from: args.registry_password_from.as_deref(),
    })
}

pub(crate) fn publish(args: &PublishArgs, printer: &Printer) -> Result<ExitStatus> {
    let (source, tag) = open_layout_image(&args.image)?;
    let image = source
        .resolve(tag.as_deref())
        .with_context(|| format!("resolving {}", args.image))?;
    let load_key = || {
        load_signer(
            &signing_key(&args.key),
            args.password.password_from.as_deref(),
        )
        .map_err(|error| format!("{error:#}").into())
    };
    let annotations: BTreeMap<String, String> = args.annotation.iter().cloned().collect();
    let mut attestations = Vec::new();
    for (kind, path) in &args.attestation {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the predicate {path}"))?;
        let predicate: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
        attestations.push((predicate_type_uri(kind), predicate));
    }
    let request = |tag: String| PublishRequest {
        source: &source,
        image: image.clone(),
        tag,
        key: &load_key,
        annotations: annotations.clone(),
        attestations: attestations.clone(),
    };
    match parse_target(&args.destination, true)? {
        Target::Layout { path, reference } => {
            let layout = Layout::open_or_create(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            finish_publish(
                printer,
                &args.destination,
                &request(reference),
                &Destination::Layout(layout),
            )
        }
        Target::Registry {
            registry,
            repository,
            reference,
        } => {
            let client = client_for(&args.registry, &registry)?;
            finish_publish(
                printer,
                &args.destination,
                &request(reference),
                &Destination::Registry {
                    client: &client,
                    registry,
                    repository,
                },
            )
        }
    }
}

fn finish_publish(
    printer: &Printer,
    shown: &str,
    request: &PublishRequest<'_>,
    destination: &Destination<'_>,
) -> Result<ExitStatus> {
    let spinner = printer.spinner(&format!("publishing {shown}"));
    let report =
        publish_image(request, destination).with_context(|| format!("publishing to {shown}"));
    spinner.finish_and_clear();
    let report = report?;
    let mut human: Vec<String> = report
        .steps
        .iter()
        .map(|step| format!("  {:<13} {} {}", step.what, step.reference, step.digest))
        .collect();
    human.insert(0, format!("published {}", report.reference));
    printer.result(&report, &human);
    Ok(ExitStatus::Success)
}

pub(crate) fn verify(args: &VerifyArgs, printer: &Printer) -> Result<ExitStatus> {
    let key = load_public_key(&args.key)?;
    let predicate_type = args.attestation_type.as_deref().map(predicate_type_uri);
    let outcome = match parse_target(&args.image, false)? {
        Target::Layout { path, reference } => {
            let layout =
                Layout::open(&path).with_context(|| format!("opening {}", path.display()))?;
            verify_image(
                &Destination::Layout(layout),
                &reference,
                &key,
                predicate_type.as_deref(),
            )
        }
        Target::Registry {
            registry,
            repository,
            reference,
        } => {
            let client = client_for(&args.registry, &registry)?;
            verify_image(
                &Destination::Registry {
                    client: &client,
                    registry,
                    repository,
                },
                &reference,
                &key,
                predicate_type.as_deref(),
            )
        }
    }
    .with_context(|| format!("verifying {}", args.image))?;
    match outcome {
        VerifyOutcome::Verified(report) => {
            let mut human = vec![format!(
                "verified {} ({}): signed by the key, payload names this digest",
                args.image, report.digest
            )];
            for attestation in &report.attestations {
                human.push(format!(
                    "  attestation {} verified",
                    attestation.predicate_type
                ));
            }
            printer.result(&report, &human);
            Ok(ExitStatus::Success)
        }
        VerifyOutcome::Rejected(reason) => {
            Ok(printer.rejected(&format!("{}: {reason}", args.image)))
        }
    }
}
