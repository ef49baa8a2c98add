use anyhow::{Context, Result, anyhow};
use sealcraft_cli::RunArgs;
use sealcraft_pipeline::plan::{BuildSource, Plan, PlanInputs, PublishTarget};
use sealcraft_pipeline::run::{
    BuildContext, BuilderContext, PublishContext, RunOptions, Stage, run as run_pipeline,
};

use crate::output::{Printer, StageReporter};
use crate::settings::{
    RegistryAccess, base_registry_client, load_signer, registry_client, source_date_epoch,
};

pub(crate) fn run(args: &RunArgs, printer: &Printer) -> Result<()> {
    let until = match &args.until {
        None => None,
        Some(name) => Some(Stage::from_name(name).ok_or_else(|| {
            anyhow!(
                "unknown stage {name:?}; stages are {}",
                Stage::ALL
                    .iter()
                    .map(|stage| stage.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let plan = Plan::load(
        &args.config,
        &PlanInputs {
            source_date_epoch: source_date_epoch()?,
        },
    )?;
    let reporter = StageReporter::new(printer);
    // Secrets for the publish stage are resolved here, never inside the pipeline.
    let client = match plan
        .publish
        .as_ref()
        .map(|publish| (publish, &publish.target))
    {
        Some((publish, PublishTarget::Registry { registry, .. })) => {
            Some(registry_client(&RegistryAccess {
                registry,
                ca_bundle: publish.ca_bundle.as_deref(),
                allow_http: &publish.allow_http,
                username: publish.username.as_deref(),
                password_from: publish.password.as_deref(),
            })?)
        }
        _ => None,
    };
    let load_key = || {
        let publish = plan.publish.as_ref().ok_or("no [publish] section")?;
        load_signer(&publish.key, publish.key_password.as_deref())
            .map_err(|error| format!("{error:#}").into())
    };
    let publish = plan.publish.as_ref().map(|_| PublishContext {
        client: client.as_ref(),
        key: &load_key,
        builder: builder_context(&plan.config_path),
    });
    let upload = match &plan.upload {
        None => None,
        Some(upload) => {
            use sealcraft_pipeline::plan::UploadCredentials;
            use sealcraft_store::Credentials;
            let resolve = crate::settings::resolve_secret;
            let credentials = match &upload.credentials {
                UploadCredentials::Ambient => Credentials::Ambient,
                UploadCredentials::S3 {
                    access_key_id,
                    secret_access_key,
                } => Credentials::S3 {
                    access_key_id: resolve(access_key_id)?,
                    secret_access_key: resolve(secret_access_key)?,
                },
                UploadCredentials::Azure {
                    account,
                    access_key,
                } => Credentials::Azure {
                    account: account.clone(),
                    access_key: resolve(access_key)?,
                },
                UploadCredentials::Gcs {
                    service_account_key,
                } => Credentials::Gcs {
                    service_account_key: resolve(service_account_key)?,
                },
            };
            Some(sealcraft_store::StoreConfig {
                url: upload.url.clone(),
                endpoint: upload.endpoint.clone(),
                region: upload.region.clone(),
                credentials,
                allow_http: upload.allow_http,
                retries: 3,
            })
        }
    };
    let mut sinks = Vec::new();
    for sink in &plan.sinks {
        use sealcraft_pipeline::sinks::{Sink, SinkTarget};
        let target = match sink.kind.as_str() {
            "file" => SinkTarget::File(sink.path.clone().unwrap_or_default()),
            "stdout" => SinkTarget::Stdout,
            "syslog" => SinkTarget::Syslog(sink.address.clone().unwrap_or_default()),
            "loki" => SinkTarget::Loki {
                url: sink.url.clone().unwrap_or_default(),
                labels: sink.labels.clone(),
            },
            _ => SinkTarget::Webhook {
                url: sink.url.clone().unwrap_or_default(),
                authorization: sink
                    .authorization
                    .as_deref()
                    .map(crate::settings::resolve_secret)
                    .transpose()?,
            },
        };
        sinks.push(Sink {
            target,
            required: sink.required,
        });
    }
    // A Dockerfile build: its store, registry access for bases, and its secrets, resolved here.
    let base_client = match &plan.source {
        BuildSource::Dockerfile(build) => {
            let registries =
                crate::commands::build::base_registries(&build.dockerfile, &build.bases);
            let publish = plan.publish.as_ref();
            base_registry_client(
                &registries,
                publish.and_then(|publish| publish.ca_bundle.as_deref()),
                publish.map_or(&[][..], |publish| &publish.allow_http[..]),
                None,
                None,
            )?
        }
        BuildSource::Assembly(_) => None,
    };
    let build = match &plan.source {
        BuildSource::Dockerfile(build) => {
            let mut secrets = std::collections::BTreeMap::new();
            for (id, reference) in &build.secrets {
                let value = crate::settings::resolve_secret(reference)
                    .with_context(|| format!("reading the build secret {id:?}"))?;
                secrets.insert(id.clone(), value);
            }
            Some(BuildContext {
                store: match &build.cache_dir {
                    Some(directory) => directory.clone(),
                    None => crate::commands::build::default_store()?,
                },
                runtime_program: std::path::PathBuf::from(build.runtime.name()),
                registry: base_client.as_ref(),
                secrets,
            })
        }
        BuildSource::Assembly(_) => None,
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "-".to_owned(), |name| name.trim().to_owned());
    let shipping = sealcraft_pipeline::sinks::ShippingReporter::new(sinks, &reporter, hostname);
    let outcome = run_pipeline(
        &plan,
        &RunOptions {
            until,
            publish,
            upload,
            build,
        },
        &shipping,
    );
    let failures = shipping.failures();
    for failure in &failures {
        printer.warning(&format!(
            "log sink {}{} lost an event: {}",
            failure.sink,
            if failure.required { " (required)" } else { "" },
            failure.message
        ));
    }
    let summary = outcome?;
    if let Some(failure) = failures.iter().find(|failure| failure.required) {
        anyhow::bail!(
            "the required log sink {} could not be delivered to: {}",
            failure.sink,
            failure.message
        );
    }
    let human: Vec<String> = summary
        .runs
        .iter()
        .zip(&summary.run_dirs)
        .map(|(record, dir)| {
            format!(
                "{} {} -> {}",
                record.image,
                record.digest.as_deref().unwrap_or("(no image)"),
                dir.display()
            )
        })
        .collect();
    printer.result(&summary, &human);
    Ok(())
}

/// Provenance facts: from the GitHub Actions environment when running there,
/// otherwise from the git checkout holding the config file.
fn builder_context(config_path: &std::path::Path) -> BuilderContext {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut internal = std::collections::BTreeMap::new();
    if variable("GITHUB_ACTIONS").as_deref() == Some("true")
        && let (Some(server), Some(repository)) =
            (variable("GITHUB_SERVER_URL"), variable("GITHUB_REPOSITORY"))
    {
        for (key, name) in [
            ("githubRunId", "GITHUB_RUN_ID"),
            ("githubRunAttempt", "GITHUB_RUN_ATTEMPT"),
            ("runnerEnvironment", "RUNNER_ENVIRONMENT"),
        ] {
            if let Some(value) = variable(name) {
                internal.insert(key.to_owned(), serde_json::Value::String(value));
            }
        }
        let builder_id = variable("GITHUB_WORKFLOW_REF").map_or_else(
            || format!("{server}/{repository}"),
            |workflow| format!("{server}/{workflow}"),
        );
        return BuilderContext {
            source: sealcraft_attest::SourceInfo {
                repository: Some(format!("git+{server}/{repository}")),
                git_ref: variable("GITHUB_REF"),
                commit: variable("GITHUB_SHA"),
            },
            builder_id,
            internal,
        };
    }
    let directory = config_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let git = |args: &[&str]| -> Option<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(directory)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    // A remote URL may carry credentials (https://user:token@host/…): keep only scheme, host and path.
    let repository = git(&["remote", "get-url", "origin"]).map(|url| match url.split_once("://") {
        Some((scheme, rest)) => format!(
            "git+{scheme}://{}",
            rest.rsplit_once('@').map_or(rest, |(_, host)| host)
        ),
        None => format!("git+{url}"),
    });
    BuilderContext {
        source: sealcraft_attest::SourceInfo {
            repository,
            git_ref: git(&["symbolic-ref", "-q", "HEAD"]),
            commit: git(&["rev-parse", "HEAD"]),
        },
        builder_id: "https://sealcraft.dev/builders/local/v1".to_owned(),
        internal,
    }
}
