//! SLSA provenance for an image: an in-toto Statement v1 whose subject is
//! the image (repository and manifest digest) and whose predicate is SLSA
//! provenance v1 (`https://slsa.dev/provenance/v1`), or v0.2 on request
//! (what Kyverno rules that read `invocation.configSource.uri` expect).
//!
//! The data comes in as [`ProvenanceInputs`]; the binary gathers it from
//! the run, from git or from the GitHub Actions environment. Nothing here
//! reads the environment, and no secret can be passed in: every field is
//! an identifier, a digest or a time.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

/// The build type sealcraft's provenance declares.
pub const BUILD_TYPE: &str = "https://sealcraft.dev/buildtypes/image/v1";
/// SLSA provenance v1.
pub const PREDICATE_V1: &str = "https://slsa.dev/provenance/v1";
/// SLSA provenance v0.2.
pub const PREDICATE_V02: &str = "https://slsa.dev/provenance/v0.2";

/// Something the build used or produced, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDescriptor {
    /// A name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests by algorithm (`sha256` → hex, `gitCommit` → sha1).
    pub digest: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A descriptor with a `sha256:<hex>` digest.
    pub fn sha256(name: Option<String>, uri: Option<String>, digest: &str) -> Self {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        Self {
            name,
            uri,
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_owned())]),
        }
    }
}

/// Where the source came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Repository URI (`git+https://…`), if known.
    pub repository: Option<String>,
    /// The ref (`refs/heads/main`), if known.
    pub git_ref: Option<String>,
    /// The commit (sha1 hex), if known.
    pub commit: Option<String>,
}

/// Everything the provenance states.
#[derive(Debug, Clone)]
pub struct ProvenanceInputs {
    /// The image repository (`registry/project`) and its manifest digest.
    pub image_repository: String,
    /// `sha256:<hex>` of the image manifest.
    pub image_digest: String,
    /// The source.
    pub source: SourceInfo,
    /// The config file path, relative to the source root.
    pub config_path: String,
    /// `sha256:<hex>` of the config file.
    pub config_digest: String,
    /// Builder-controlled parameters (architecture, SOURCE_DATE_EPOCH, …).
    pub internal_parameters: BTreeMap<String, Value>,
    /// Base images and other inputs, by digest.
    pub dependencies: Vec<ResourceDescriptor>,
    /// The builder's identity (a CI workflow URI, or the local builder).
    pub builder_id: String,
    /// The builder's version information.
    pub builder_version: BTreeMap<String, String>,
    /// A unique id of this build.
    pub invocation_id: String,
    /// RFC 3339 UTC start.
    pub started_on: String,
    /// RFC 3339 UTC end.
    pub finished_on: String,
    /// Artifacts produced alongside the image (SBOMs, scan report).
    pub byproducts: Vec<ResourceDescriptor>,
    /// Further external parameters of the build (a Dockerfile, its target, build arguments).
    pub build_parameters: BTreeMap<String, Value>,
}

fn subject(inputs: &ProvenanceInputs) -> Value {
    let hex = inputs
        .image_digest
        .strip_prefix("sha256:")
        .unwrap_or(&inputs.image_digest);
    json!([{"name": inputs.image_repository, "digest": {"sha256": hex}}])
}

fn external_parameters(inputs: &ProvenanceInputs) -> Value {
    let mut parameters = json!({
        "config": {"path": inputs.config_path, "digest": {"sha256": inputs.config_digest.strip_prefix("sha256:").unwrap_or(&inputs.config_digest)}},
    });
    if let Some(repository) = &inputs.source.repository {
        parameters["repository"] = Value::String(repository.clone());
    }
    if let Some(git_ref) = &inputs.source.git_ref {
        parameters["ref"] = Value::String(git_ref.clone());
    }
    if let Some(commit) = &inputs.source.commit {
        parameters["commit"] = Value::String(commit.clone());
    }
    for (key, value) in &inputs.build_parameters {
        parameters[key] = value.clone();
    }
    parameters
}

/// The resolved dependencies: the source commit first, then the inputs.
fn resolved(inputs: &ProvenanceInputs) -> Vec<ResourceDescriptor> {
    let mut dependencies = Vec::new();
    if let (Some(repository), Some(commit)) = (&inputs.source.repository, &inputs.source.commit) {
        let uri = match &inputs.source.git_ref {
            Some(git_ref) => format!("{repository}@{git_ref}"),
            None => repository.clone(),
        };
        dependencies.push(ResourceDescriptor {
            name: None,
            uri: Some(uri),
            digest: BTreeMap::from([("gitCommit".to_owned(), commit.clone())]),
        });
    }
    dependencies.extend(inputs.dependencies.iter().cloned());
    dependencies
}

/// The in-toto Statement v1 with SLSA provenance v1.
pub fn statement_v1(inputs: &ProvenanceInputs) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject(inputs),
        "predicateType": PREDICATE_V1,
        "predicate": predicate_v1(inputs),
    })
}

/// The in-toto Statement v0.1 with SLSA provenance v0.2.
pub fn statement_v02(inputs: &ProvenanceInputs) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": subject(inputs),
        "predicateType": PREDICATE_V02,
        "predicate": predicate_v02(inputs),
    })
}

/// The SLSA provenance v1 predicate alone.
pub fn predicate_v1(inputs: &ProvenanceInputs) -> Value {
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external_parameters(inputs),
            "internalParameters": inputs.internal_parameters,
            "resolvedDependencies": resolved(inputs),
        },
        "runDetails": {
            "builder": {"id": inputs.builder_id, "version": inputs.builder_version},
            "metadata": {"invocationId": inputs.invocation_id, "startedOn": inputs.started_on, "finishedOn": inputs.finished_on},
            "byproducts": inputs.byproducts,
        },
    })
}

/// The SLSA provenance v0.2 predicate (for policies written against it).
pub fn predicate_v02(inputs: &ProvenanceInputs) -> Value {
    let config_source = match (&inputs.source.repository, &inputs.source.commit) {
        (Some(repository), Some(commit)) => json!({
            "uri": match &inputs.source.git_ref { Some(git_ref) => format!("{repository}@{git_ref}"), None => repository.clone() },
            "digest": {"sha1": commit},
            "entryPoint": inputs.config_path,
        }),
        _ => {
            json!({"uri": format!("file:{}", inputs.config_path), "digest": {"sha256": inputs.config_digest.strip_prefix("sha256:").unwrap_or(&inputs.config_digest)}, "entryPoint": inputs.config_path})
        }
    };
    let materials: Vec<Value> = resolved(inputs).into_iter().map(|dependency| json!({"uri": dependency.uri.or(dependency.name).unwrap_or_default(), "digest": dependency.digest})).collect();
    json!({
        "builder": {"id": inputs.builder_id},
        "buildType": BUILD_TYPE,
        "invocation": {"configSource": config_source, "parameters": external_parameters(inputs), "environment": inputs.internal_parameters},
        "metadata": {
            "buildInvocationId": inputs.invocation_id,
            "buildStartedOn": inputs.started_on,
            "buildFinishedOn": inputs.finished_on,
            "completeness": {"parameters": true, "environment": false, "materials": false},
            "reproducible": false,
        },
        "materials": materials,
    })
}
