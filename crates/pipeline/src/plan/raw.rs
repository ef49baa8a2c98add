//! `sealcraft.toml` as written: one struct per section, unknown keys refused,
//! spans kept so every error can point at its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) project: RawProject,
    #[serde(default)]
    pub(super) base: Option<Spanned<RawBase>>,
    #[serde(default)]
    pub(super) user: Option<Spanned<RawUser>>,
    #[serde(default)]
    pub(super) files: Vec<Spanned<RawFile>>,
    #[serde(default)]
    pub(super) config: Option<Spanned<RawRuntime>>,
    #[serde(default)]
    pub(super) squash: RawSquash,
    #[serde(default)]
    pub(super) output: RawOutput,
    #[serde(default)]
    pub(super) build: RawBuild,
    #[serde(default)]
    pub(super) harden: Option<RawHarden>,
    pub(super) patch: Option<RawPatch>,
    #[serde(default)]
    pub(super) test: Option<RawTest>,
    #[serde(default)]
    pub(super) publish: Option<RawPublish>,
    #[serde(default)]
    pub(super) scan: Option<RawScan>,
    #[serde(default)]
    pub(super) upload: Option<RawUpload>,
    #[serde(default)]
    pub(super) sinks: Vec<RawSink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) name: Spanned<String>,
    pub(super) version: Spanned<String>,
    pub(super) registry: Spanned<String>,
    pub(super) architectures: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBase {
    pub(super) image: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) name: Spanned<String>,
    pub(super) uid: Spanned<u32>,
    pub(super) gid: Option<u32>,
    pub(super) home: Option<String>,
    pub(super) shell: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) source: Spanned<String>,
    pub(super) destination: Spanned<String>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) owner: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    pub(super) user: Option<Spanned<String>>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) cmd: Option<Vec<String>>,
    pub(super) env: Option<BTreeMap<String, String>>,
    pub(super) workdir: Option<String>,
    pub(super) exposed_ports: Option<Vec<Spanned<String>>>,
    pub(super) volumes: Option<Vec<String>>,
    pub(super) stop_signal: Option<String>,
    pub(super) labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSquash {
    pub(super) enabled: bool,
}

impl Default for RawSquash {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    pub(super) dir: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub(super) source_date_epoch: Option<i64>,
    pub(super) compression: Option<Spanned<String>>,
    pub(super) dockerfile: Option<Spanned<String>>,
    pub(super) context: Option<Spanned<String>>,
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) args: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) bases: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) secrets: Vec<RawBuildSecret>,
    pub(super) require_pinned: Option<bool>,
    pub(super) network: Option<Spanned<String>>,
    pub(super) runtime: Option<Spanned<String>>,
    pub(super) cache_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuildSecret {
    pub(super) id: Spanned<String>,
    pub(super) source: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHarden {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) remove_shells: bool,
    #[serde(default)]
    pub(super) remove_packages: Vec<String>,
    #[serde(default)]
    pub(super) keep: Vec<String>,
    #[serde(default = "yes")]
    pub(super) keep_copyright: bool,
    #[serde(default)]
    pub(super) keep_setuid: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPatch {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) update: Option<Spanned<String>>,
    pub(super) db: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) sources: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) refuse_scripts: Vec<String>,
    #[serde(default = "yes")]
    pub(super) check_valid_until: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTest {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) configs: Vec<Spanned<String>>,
    pub(super) suites: Option<Spanned<Vec<String>>>,
    pub(super) timeout: Option<Spanned<u64>>,
    pub(super) runtime: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_setuid: Vec<String>,
    #[serde(default)]
    pub(super) language_package_managers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScan {
    pub(super) db: Spanned<String>,
    #[serde(default)]
    pub(super) fail_on: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) ignore_unfixed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpload {
    pub(super) url: Spanned<String>,
    pub(super) endpoint: Option<Spanned<String>>,
    pub(super) region: Option<String>,
    pub(super) access_key_id: Option<Spanned<String>>,
    pub(super) secret_access_key: Option<Spanned<String>>,
    pub(super) account: Option<Spanned<String>>,
    pub(super) access_key: Option<Spanned<String>>,
    pub(super) service_account_key: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub(super) key: Spanned<String>,
    pub(super) key_password: Option<Spanned<String>>,
    pub(super) target: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_http: Vec<String>,
    pub(super) ca_bundle: Option<Spanned<String>>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) provenance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) path: Option<String>,
    pub(super) address: Option<String>,
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    pub(super) authorization: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) required: bool,
}

fn yes() -> bool {
    true
}
