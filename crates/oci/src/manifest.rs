//! Manifests, indexes, descriptors and image configs as serde documents.
//!
//! oci-spec's document structs keep annotations in a `HashMap`, whose
//! serialisation order changes from run to run; a reproducible manifest
//! needs sorted keys, so these structs use `BTreeMap` and reuse oci-spec's
//! `Digest`. Image configs are kept as JSON objects so that fields this
//! crate does not model (Docker's `Healthcheck`, vendor extensions) survive
//! every rewrite.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::{Digest, sha256_of};
use crate::error::{Error, Result};

/// Media types sealcraft reads and writes.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip-compressed OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// zstd-compressed OCI layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker layer as written by `docker save` (uncompressed).
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

    /// Whether `media_type` is an image manifest (OCI or Docker).
    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    /// Whether `media_type` is an image index (OCI or Docker).
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }
}

/// The annotation that names an image in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation naming the image an image was built on.
pub const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";
/// The annotation giving the digest of the base image.
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// A platform in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (GOARCH values).
    pub architecture: String,
    /// Operating system (GOOS values).
    pub os: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size in bytes of the referenced content.
    pub size: u64,
    /// Where the content may also be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The type of an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Embedded content (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A descriptor with no annotations or platform.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            data: None,
        }
    }

    /// The value of the `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// An image manifest (OCI, or Docker schema 2 which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The type of an artifact manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// An OCI manifest for `config` and `layers`.
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An image index (OCI, or Docker manifest list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The type of an artifact index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// An empty OCI index.
    pub fn new_oci() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// Serialises a document the way sealcraft writes every JSON blob:
/// compact, fields in declaration order, map keys sorted.
pub fn to_canonical_json<T: Serialize>(what: &'static str, document: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(document).map_err(|source| Error::Serialize { what, source })
}

/// Parses a JSON document that was read from a blob.
pub fn from_blob<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::MalformedDocument {
        what,
        digest: digest.to_string(),
        source,
    })
}

/// The runtime defaults an image config carries (`config.config`), in the
/// fields sealcraft reads and sets. Unknown fields are kept by [`ImageConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// `User`.
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `ExposedPorts` as `port/proto` keys.
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none",
        with = "set_map"
    )]
    pub exposed_ports: Option<Vec<String>>,
    /// `Env` as `K=V`.
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `Entrypoint`.
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `Volumes` as paths.
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "Option::is_none",
        with = "set_map"
    )]
    pub volumes: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// `Labels`.
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal`.
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
}

/// `{"a": {}, "b": {}}` <-> `["a", "b"]`.
mod set_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Empty {}

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Vec<String>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let map: Option<BTreeMap<&str, Empty>> = value
            .as_ref()
            .map(|keys| keys.iter().map(|key| (key.as_str(), Empty {})).collect());
        map.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        let map: Option<BTreeMap<String, serde::de::IgnoredAny>> =
            Option::deserialize(deserializer)?;
        Ok(map.map(|map| map.into_keys().collect()))
    }
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the step ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free-form comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step changed no files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An image config, kept as a JSON object so that every field survives.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    document: Map<String, Value>,
}

impl ImageConfig {
    /// Parses config bytes read from a blob.
    pub fn from_blob(digest: &Digest, bytes: &[u8]) -> Result<Self> {
        let document: Map<String, Value> = from_blob("image config", digest, bytes)?;
        let config = Self { document };
        // Refuse configs whose known fields have the wrong shape early, with the digest in the message.
        config.runtime_config_checked(digest)?;
        config.history_checked(digest)?;
        Ok(config)
    }

    /// A new config for `architecture`/`os` with no layers.
    pub fn new(architecture: &str, os: &str) -> Self {
        let mut document = Map::new();
        document.insert("architecture".into(), Value::String(architecture.into()));
        document.insert("os".into(), Value::String(os.into()));
        document.insert("config".into(), Value::Object(Map::new()));
        document.insert(
            "rootfs".into(),
            serde_json::json!({"type": "layers", "diff_ids": []}),
        );
        document.insert("history".into(), Value::Array(Vec::new()));
        Self { document }
    }

    fn runtime_config_checked(&self, digest: &Digest) -> Result<RuntimeConfig> {
        match self.document.get("config") {
            None | Some(Value::Null) => Ok(RuntimeConfig::default()),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|source| Error::MalformedDocument {
                    what: "image config",
                    digest: digest.to_string(),
                    source,
                })
            }
        }
    }

    fn history_checked(&self, digest: &Digest) -> Result<Vec<HistoryEntry>> {
        match self.document.get("history") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|source| Error::MalformedDocument {
                    what: "image config history",
                    digest: digest.to_string(),
                    source,
                })
            }
        }
    }

    /// The runtime defaults.
    pub fn runtime_config(&self) -> RuntimeConfig {
        self.document
            .get("config")
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }

    /// Reads the runtime defaults, lets `edit` change them, and writes them back.
    pub fn edit_runtime_config(&mut self, edit: impl FnOnce(&mut RuntimeConfig)) {
        let mut runtime = self.runtime_config();
        edit(&mut runtime);
        self.set_runtime_config(&runtime);
    }

    /// Replaces the fields of `config.config` that [`RuntimeConfig`] models,
    /// keeping any others (such as `Healthcheck`).
    pub fn set_runtime_config(&mut self, runtime: &RuntimeConfig) {
        let serialized =
            serde_json::to_value(runtime).unwrap_or_else(|_| unreachable!("plain data serialises"));
        let entry = self
            .document
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let (Value::Object(target), Value::Object(fields)) = (entry, serialized) {
            for key in [
                "User",
                "ExposedPorts",
                "Env",
                "Entrypoint",
                "Cmd",
                "Volumes",
                "WorkingDir",
                "Labels",
                "StopSignal",
            ] {
                match fields.get(key) {
                    Some(value) => {
                        target.insert(key.to_owned(), value.clone());
                    }
                    None => {
                        target.remove(key);
                    }
                }
            }
        }
    }

    /// The whole `config.config` object, including fields not modelled.
    pub fn runtime_config_json(&self) -> Option<&Value> {
        self.document.get("config")
    }

    /// Sets (or with `None` removes) one field of `config.config` that
    /// [`RuntimeConfig`] does not model, such as Docker's `Healthcheck` and `Shell`.
    pub fn set_runtime_field(&mut self, key: &str, value: Option<Value>) {
        let entry = self
            .document
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Value::Object(target) = entry {
            match value {
                Some(value) => {
                    target.insert(key.to_owned(), value);
                }
                None => {
                    target.remove(key);
                }
            }
        }
    }

    /// Sets the top-level `author`.
    pub fn set_author(&mut self, author: &str) {
        self.document
            .insert("author".into(), Value::String(author.into()));
    }

    /// The architecture.
    pub fn architecture(&self) -> Option<&str> {
        self.document.get("architecture").and_then(Value::as_str)
    }

    /// The operating system.
    pub fn os(&self) -> Option<&str> {
        self.document.get("os").and_then(Value::as_str)
    }

    /// The CPU variant.
    pub fn variant(&self) -> Option<&str> {
        self.document.get("variant").and_then(Value::as_str)
    }

    /// The `created` timestamp.
    pub fn created(&self) -> Option<&str> {
        self.document.get("created").and_then(Value::as_str)
    }

    /// Sets `created`.
    pub fn set_created(&mut self, created: &str) {
        self.document
            .insert("created".into(), Value::String(created.into()));
    }

    /// The layer diff IDs, base first.
    pub fn diff_ids(&self) -> Vec<String> {
        self.document
            .get("rootfs")
            .and_then(|rootfs| rootfs.get("diff_ids"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the diff IDs.
    pub fn set_diff_ids(&mut self, diff_ids: &[Digest]) {
        let ids = diff_ids
            .iter()
            .map(|id| Value::String(id.to_string()))
            .collect();
        self.document.insert(
            "rootfs".into(),
            serde_json::json!({"type": "layers", "diff_ids": Value::Array(ids)}),
        );
    }

    /// The history, first step first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.document
            .get("history")
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }

    /// Replaces the history.
    pub fn set_history(&mut self, history: &[HistoryEntry]) {
        let value =
            serde_json::to_value(history).unwrap_or_else(|_| unreachable!("plain data serialises"));
        self.document.insert("history".into(), value);
    }

    /// The config as JSON bytes; keys keep their order, so an unchanged
    /// config of sealcraft's own writes back to the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_canonical_json("image config", &self.document)
    }

    /// The JSON object.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.document
    }

    /// The sha256 of [`Self::to_bytes`].
    pub fn digest(&self) -> Result<Digest> {
        Ok(sha256_of(&self.to_bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_unknown_fields_through_edits() {
        let bytes = br#"{"architecture":"amd64","os":"linux","config":{"User":"app","Healthcheck":{"Test":["CMD","true"]},"ExposedPorts":{"8080/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]},"x-vendor":1}"#;
        let digest = sha256_of(bytes);
        let mut config = ImageConfig::from_blob(&digest, bytes).unwrap();
        let mut runtime = config.runtime_config();
        assert_eq!(runtime.exposed_ports, Some(vec!["8080/tcp".to_owned()]));
        runtime.working_dir = Some("/app".into());
        config.set_runtime_config(&runtime);
        let written = String::from_utf8(config.to_bytes().unwrap()).unwrap();
        assert!(
            written.contains(r#""Healthcheck":{"Test":["CMD","true"]}"#),
            "{written}"
        );
        assert!(written.contains(r#""x-vendor":1"#));
        assert!(written.contains(r#""WorkingDir":"/app""#));
        assert!(written.contains(r#""ExposedPorts":{"8080/tcp":{}}"#));
    }

    #[test]
    fn config_with_wrongly_typed_fields_is_refused_with_its_digest() {
        let bytes = br#"{"architecture":"amd64","os":"linux","config":{"Env":"PATH=/bin"}}"#;
        let digest = sha256_of(bytes);
        let error = ImageConfig::from_blob(&digest, bytes)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&digest.to_string()), "{error}");
    }
}
