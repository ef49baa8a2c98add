use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use sealcraft_cli::{PublishArgs, RegistryArgs, VerifyArgs};
use sealcraft_oci::image::ImageName;
use sealcraft_oci::layout::Layout;
use sealcraft_pipeline::publish::{
    Destination, PublishRequest, VerifyOutcome, publish as publish_image, verify as verify_image,
};
use sealcraft_registry::{Client, ClientConfig, Credentials};
use sealcraft_secrets::{Secret, SecretRef};
use sealcraft_sign::dsse::predicate_type_uri;

use crate::output::{Printer, Rejected};
use crate::settings::{load_private_key, load_public_key, open_layout_image};

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

/// Registry client settings from flags, ~/.docker/config.json and secret references.
fn client_for(args: &RegistryArgs, registry: &str) -> Result<Client> {
    let ca_bundle = match &args.ca_bundle {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let mut credentials = HashMap::new();
    if let Some(username) = &args.registry_username {
        let password = match &args.registry_password_from {
            Some(reference) => {
                SecretRef::parse(reference)?.resolve(|name| std::env::var(name).ok())?
            }
            None => bail!("--registry-username needs --registry-password-from env:NAME|file:PATH"),
        };
        credentials.insert(
            registry.to_owned(),
            Credentials {
                username: username.clone(),
                password,
            },
        );
    } else if let Some(found) = docker_config_credentials(registry)? {
        credentials.insert(registry.to_owned(), found);
    }
    Ok(Client::new(ClientConfig {
        ca_bundle,
        allow_http: args.allow_http.clone(),
        credentials,
        retries: 3,
        chunk_size: 0,
    })?)
}

/// Credentials for `registry` in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn docker_config_credentials(registry: &str) -> Result<Option<Credentials>> {
    let directory = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".docker"))
        });
    let Some(path) = directory.map(|directory| directory.join("config.json")) else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(entry) = config["auths"].as_object().and_then(|auths| {
        auths
            .iter()
            .find(|(key, _)| {
                key.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    == registry
            })
            .map(|(_, value)| value)
    }) else {
        return Ok(None);
    };
    let Some(encoded) = entry["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .with_context(|| {
            format!(
                "{}: the auth entry for {registry} is not base64",
                path.display()
            )
        })?;
    let decoded = Secret::new(String::from_utf8(decoded).with_context(|| {
        format!(
            "{}: the auth entry for {registry} is not text",
            path.display()
        )
    })?);
    let Some((username, password)) = decoded.expose().split_once(':') else {
        bail!(
            "{}: the auth entry for {registry} is not user:password",
            path.display()
        );
    };
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: Secret::new(password),
    }))
}

pub(crate) fn publish(args: &PublishArgs, printer: &Printer) -> Result<()> {
    let (source, tag) = open_layout_image(&args.image)?;
    let image = source
        .resolve(tag.as_deref())
        .with_context(|| format!("resolving {}", args.image))?;
    let load_key = || {
        load_private_key(&args.key, args.password.password_from.as_deref())
            .map_err(|error| format!("{error:#}").into())
    };
    let mut annotations = BTreeMap::new();
    for annotation in &args.annotation {
        let (name, value) = annotation
            .split_once('=')
            .with_context(|| format!("--annotation {annotation:?} is not KEY=VALUE"))?;
        annotations.insert(name.to_owned(), value.to_owned());
    }
    let mut attestations = Vec::new();
    for attestation in &args.attestation {
        let (kind, path) = attestation
            .split_once('=')
            .with_context(|| format!("--attestation {attestation:?} is not TYPE=FILE"))?;
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
) -> Result<()> {
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
    Ok(())
}

pub(crate) fn verify(args: &VerifyArgs, printer: &Printer) -> Result<()> {
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
            Ok(())
        }
        VerifyOutcome::Rejected(reason) => {
            Err(Rejected(format!("{}: {reason}", args.image)).into())
        }
    }
}
