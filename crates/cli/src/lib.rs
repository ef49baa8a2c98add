//! sealcraft's command line as clap derive structs. Behaviour lives in the
//! binary's `commands/` modules; this crate only describes the surface and
//! parses values into types (choices as enums, `KEY=VALUE` pairs split), so
//! a malformed flag is refused by the parser with clap's own message.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `sealcraft --help` opens with.
const ABOUT: &str = "sealcraft takes an application from source to a signed, attested SLSA Build Level 3 container image, natively and without a daemon, and verifies the signatures and attestations of such images.";

/// From source to a signed, attested container image, and its verification.
#[derive(Debug, Parser)]
#[command(name = "sealcraft", version, about = ABOUT, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Machine-readable JSON on stdout (humans read stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress display.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline described by sealcraft.toml.
    Run(RunArgs),
    /// Work with images in OCI layouts.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Assemble an image natively from sealcraft.toml (base, files, user, config).
    Assemble(AssembleArgs),
    /// Build an image from a multi-stage Dockerfile, daemonless (RUN steps in runc or crun).
    Build(BuildArgs),
    /// Manage the build store `sealcraft build` keeps its layers and step cache in.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Remove package managers, their exclusive dependencies, unreachable libraries, docs and caches.
    Harden(HardenArgs),
    /// Install the OS packages that fix an image's vulnerabilities as one layer, from signed apt repositories.
    Patch(PatchArgs),
    /// Squash all layers of an image into one, keeping every config field.
    Squash(SquashArgs),
    /// Test an image: container-structure-test specs, service tests, the security suite; exit 1 on a failure.
    Test(TestArgs),
    /// Manage cosign-compatible signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign a file like `cosign sign-blob --key` (base64 signature on stdout).
    SignBlob(SignBlobArgs),
    /// Verify a file's signature like `cosign verify-blob --key`.
    VerifyBlob(VerifyBlobArgs),
    /// Sign an image, then push it: signature first, image, tag, attestations.
    Publish(PublishArgs),
    /// Verify an image's signature (and attestations) with a public key.
    Verify(VerifyArgs),
    /// Write the image's SBOM as CycloneDX 1.6 and/or SPDX 2.3 JSON.
    Sbom(SbomArgs),
    /// Match an image (or an SBOM) against OSV advisories; exit 1 when the gate fails.
    Scan(ScanArgs),
    /// Manage the local advisory database.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `sealcraft db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Import OSV records from a directory, an osv.dev all.zip or a .jsonl file.
    Import(DbImportArgs),
    /// Show what a database holds.
    Info(DbInfoArgs),
}

/// `sealcraft db import`.
#[derive(Debug, Args)]
pub struct DbImportArgs {
    /// The records: a directory of OSV JSON files, a .zip of them, or JSON Lines.
    pub source: PathBuf,
    /// The database directory to (re)create.
    #[arg(long)]
    pub db: PathBuf,
}

/// `sealcraft db info`.
#[derive(Debug, Args)]
pub struct DbInfoArgs {
    /// The database directory.
    #[arg(long)]
    pub db: PathBuf,
}

/// `sealcraft scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image: oci:DIR[:TAG], or dir:PATH for a root filesystem directory.
    #[arg(required_unless_present = "sbom", conflicts_with = "sbom")]
    pub image: Option<String>,
    /// Scan this SBOM (CycloneDX or SPDX JSON) instead of an image.
    #[arg(long)]
    pub sbom: Option<PathBuf>,
    /// The advisory database (made by `sealcraft db import`), or a directory of OSV JSON records.
    #[arg(long)]
    pub db: PathBuf,
    /// Severities that fail the scan, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        default_value = "HIGH,CRITICAL"
    )]
    pub fail_on: Vec<SeverityArg>,
    /// Findings without a fixed version do not fail the scan.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Write the Trivy-compatible JSON report here.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report here.
    #[arg(long)]
    pub sarif: Option<PathBuf>,
    /// The artifact name in the report (default: the image reference).
    #[arg(long)]
    pub name: Option<String>,
    /// OpenVEX documents whose `not_affected` and `fixed` statements suppress findings; repeatable.
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<PathBuf>,
}

/// SBOM formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
    /// Both.
    Both,
}

/// `sealcraft sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The image: oci:DIR[:TAG], or dir:PATH for a root filesystem directory.
    pub image: String,
    /// Which formats to write.
    #[arg(long, value_enum, default_value = "both")]
    pub format: SbomFormat,
    /// Where to write sbom-{image}-{format}.json.
    #[arg(long, short = 'o', default_value = ".")]
    pub output_dir: PathBuf,
    /// The image name recorded in the SBOM (default: from the image reference).
    #[arg(long)]
    pub name: Option<String>,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// How to reach registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry (HOST:PORT); repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub allow_http: Vec<String>,
    /// Trust the CAs in this PEM file instead of the built-in roots.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Registry user name (otherwise ~/.docker/config.json is consulted).
    #[arg(long)]
    pub registry_username: Option<String>,
    /// Registry password from env:NAME, file:PATH or vault:MOUNT/PATH#FIELD.
    #[arg(long, value_name = "REF", requires = "registry_username")]
    pub registry_password_from: Option<String>,
}

/// `sealcraft publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// Where to: HOST/REPO:TAG or oci:DIR:TAG.
    pub destination: String,
    /// The private key: a cosign.key file, vault:MOUNT/PATH#FIELD holding its PEM, or vault-transit:[MOUNT/]KEY (signs in the vault).
    #[arg(long, value_name = "FILE|REF")]
    pub key: String,
    /// The key password source.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Attach an attestation: TYPE=PREDICATE_FILE (TYPE: slsaprovenance1, cyclonedx, spdx, vuln or a URI); repeatable.
    #[arg(long, value_name = "TYPE=FILE", value_parser = parse_pair)]
    pub attestation: Vec<(String, String)>,
    /// A claim in the signature payload: KEY=VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub annotation: Vec<(String, String)>,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `sealcraft verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image: HOST/REPO:TAG[@DIGEST] or oci:DIR:TAG.
    pub image: String,
    /// The public key (cosign.pub).
    #[arg(long)]
    pub key: PathBuf,
    /// Also verify attestations of this type (slsaprovenance, slsaprovenance1, cyclonedx, spdx, vuln or a URI).
    #[arg(long)]
    pub attestation_type: Option<String>,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where the private key password comes from: `COSIGN_PASSWORD`, or a reference.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the key password from env:NAME, file:PATH or vault:MOUNT/PATH#FIELD instead of COSIGN_PASSWORD.
    #[arg(long, value_name = "REF")]
    pub password_from: Option<String>,
}

/// `sealcraft key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new key pair: cosign.key (encrypted) and cosign.pub.
    Generate(KeyGenerateArgs),
}

/// `sealcraft key generate`.
#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Where to write cosign.key and cosign.pub.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// The password source.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `sealcraft sign-blob`.
#[derive(Debug, Args)]
pub struct SignBlobArgs {
    /// The private key: a cosign.key file, vault:MOUNT/PATH#FIELD holding its PEM, or vault-transit:[MOUNT/]KEY (signs in the vault).
    #[arg(long, value_name = "FILE|REF")]
    pub key: String,
    /// Also write the signature to this file.
    #[arg(long)]
    pub output_signature: Option<PathBuf>,
    /// The password source.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The file to sign.
    pub file: PathBuf,
}

/// `sealcraft verify-blob`.
#[derive(Debug, Args)]
pub struct VerifyBlobArgs {
    /// The public key (cosign.pub).
    #[arg(long)]
    pub key: PathBuf,
    /// The signature file (base64).
    #[arg(long)]
    pub signature: PathBuf,
    /// The signed file.
    pub file: PathBuf,
}

/// `sealcraft run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, short, default_value = "sealcraft.toml")]
    pub config: PathBuf,
    /// Stop after this stage.
    #[arg(long, value_enum)]
    pub until: Option<StageArg>,
}

/// `sealcraft image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an image: rootfs:FILE, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG].
    Import(ImportArgs),
    /// Show an image's manifest digest, config and layers.
    Inspect(InspectArgs),
    /// Remove blobs no tag of an OCI layout reaches.
    Gc(GcArgs),
}

/// `sealcraft image import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where the image comes from.
    pub source: String,
    /// Where it goes: oci:DIR:TAG.
    #[arg(long, short)]
    pub output: String,
    /// Architecture of a rootfs import, or the one to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `sealcraft image inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `sealcraft image gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The layout: oci:DIR.
    pub layout: String,
}

/// `sealcraft assemble`.
#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// The config file.
    #[arg(long, short, default_value = "sealcraft.toml")]
    pub config: PathBuf,
    /// The architecture (default: the first one in the config).
    #[arg(long)]
    pub arch: Option<String>,
    /// Where the image goes: oci:DIR:TAG.
    #[arg(long, short)]
    pub output: String,
}

/// `sealcraft patch`.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// A Trivy-format JSON report (sealcraft's or trivy's): only its fixable
    /// OS-package findings are patched. Without one, every package with a
    /// newer version in the suites is updated.
    #[arg(long, short = 'r')]
    pub report: Option<PathBuf>,
    /// Where the patched image goes: oci:DIR:TAG.
    #[arg(long, short, required_unless_present = "dry_run")]
    pub output: Option<String>,
    /// Write an OpenVEX document with a `fixed` statement per vulnerability fixed.
    #[arg(long, value_name = "FILE")]
    pub vex: Option<PathBuf>,
    /// Resolve and download, report what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// An apt source line (`deb [signed-by=KEYRING] URI SUITE COMPONENT…`)
    /// used instead of the image's or this machine's sources; repeatable.
    #[arg(long, value_name = "LINE")]
    pub source: Vec<String>,
    /// Refuse to install this package without running its maintainer scripts; repeatable.
    #[arg(long, value_name = "NAME")]
    pub refuse_scripts: Vec<String>,
    /// Accept Release files past their Valid-Until (snapshot archives).
    #[arg(long)]
    pub no_check_valid_until: bool,
    /// Where downloads are cached by hash (default: the user's cache directory).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `sealcraft test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// A test spec (container-structure-test schema 2.0.0 or 1.0.0, YAML or JSON); repeatable.
    #[arg(long, short, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// A built-in suite to run too; repeatable.
    #[arg(long, value_enum)]
    pub suite: Vec<SuiteArg>,
    /// The report on stdout.
    #[arg(long, short, value_enum, default_value_t = TestOutputArg::Text)]
    pub output: TestOutputArg,
    /// Also write the report to FILE (JUnit with `--output junit`, JSON otherwise).
    #[arg(long, value_name = "FILE")]
    pub test_report: Option<PathBuf>,
    /// The JUnit test suite's name.
    #[arg(long, default_value = "sealcraft")]
    pub junit_suite_name: String,
    /// Stop at the first failing test.
    #[arg(long)]
    pub fail_fast: bool,
    /// Seconds one command may run before it is killed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// The OCI runtime for command and service tests.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Runc)]
    pub runtime: RuntimeArg,
    /// Security suite: allow this setuid/setgid path; repeatable.
    #[arg(long, value_name = "PATH")]
    pub allow_setuid: Vec<String>,
    /// Security suite: pip and npm count as package managers too.
    #[arg(long)]
    pub language_package_managers: bool,
    /// Where the image is unpacked for commands (default: a new temporary
    /// directory, removed unless a failure left a bundle in it).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `--suite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    /// No package managers, non-root, no secrets in the env, a read-only root,
    /// every DT_NEEDED resolved, no setuid and no world-writable files.
    Security,
}

/// `--output` of `sealcraft test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestOutputArg {
    /// Pass or fail per test with expected and actual values.
    Text,
    /// container-structure-test's JSON fields.
    Json,
    /// JUnit XML.
    Junit,
}

/// `sealcraft squash`.
#[derive(Debug, Args)]
pub struct SquashArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// Where the squashed image goes: oci:DIR:TAG.
    #[arg(long, short)]
    pub output: String,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `sealcraft build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context.
    #[arg(long, default_value = ".")]
    pub context: PathBuf,
    /// The Dockerfile (default: Dockerfile in the context).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    pub target: Option<String>,
    /// A build argument, KEY=VALUE (or KEY to take the value from the environment); repeatable.
    #[arg(long, value_name = "KEY[=VALUE]", value_parser = parse_build_arg)]
    pub build_arg: Vec<BuildArg>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE, id=ID,env=NAME or id=ID,ref=vault:…; repeatable.
    #[arg(long, value_name = "id=ID,src=FILE", value_parser = parse_secret)]
    pub secret: Vec<SecretArg>,
    /// Use IMAGE wherever FROM or COPY --from names NAME: NAME=oci:DIR:TAG@sha256:… or NAME=HOST/REPO@sha256:…; repeatable.
    #[arg(long, value_name = "NAME=IMAGE", value_parser = parse_pair)]
    pub base: Vec<(String, String)>,
    /// Refuse base images that are not named by digest.
    #[arg(long)]
    pub require_pinned: bool,
    /// Run every step again, ignoring the layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The build store: layers, step cache, cache mounts (default: ~/.cache/sealcraft/build).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Network for RUN steps: default (the host's) or none.
    #[arg(long, value_enum, default_value_t = NetworkArg::Default)]
    pub network: NetworkArg,
    /// The OCI runtime for RUN steps.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Runc)]
    pub runtime: RuntimeArg,
    /// The architecture to build for (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Allow the image to run as root (for builder images that are not shipped).
    #[arg(long)]
    pub allow_root: bool,
    /// Where the image goes: oci:DIR:TAG.
    #[arg(long, short)]
    pub output: String,
    /// Registry access for base images.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `sealcraft cache …`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove what no build used lately (step records, base images, cache mounts) and every layer only they needed.
    Prune(PruneArgs),
}

/// `sealcraft cache prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The build store (default: the one `sealcraft build` uses, ~/.cache/sealcraft/build).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep what a build used within this long: 168h, 7d, 90m.
    #[arg(long, value_name = "DURATION", default_value = "168h")]
    pub unused_for: String,
    /// Remove everything, whenever it was used.
    #[arg(long, conflicts_with = "unused_for")]
    pub all: bool,
}

/// `sealcraft harden`.
#[derive(Debug, Args)]
pub struct HardenArgs {
    /// The image: oci:DIR[:TAG].
    pub image: String,
    /// Where the hardened image goes: oci:DIR:TAG.
    #[arg(long, short)]
    pub output: String,
    /// Also remove shells (sh, bash, dash, …) and the packages that ship them.
    #[arg(long)]
    pub remove_shells: bool,
    /// Also remove this package (and what only it needed); repeatable.
    #[arg(long, value_name = "NAME")]
    pub remove_package: Vec<String>,
    /// Never remove paths matching this glob (relative to the root, e.g. usr/lib/*/libssl*); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub keep: Vec<String>,
    /// Remove /usr/share/doc/*/copyright too (SBOMs read licenses from them).
    #[arg(long)]
    pub no_copyright: bool,
    /// Leave setuid and setgid bits as they are (by default they are cleared).
    #[arg(long)]
    pub keep_setuid: bool,
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}

/// `--network` of `sealcraft build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// The host's network.
    Default,
    /// The host's network (Docker's name for it).
    Host,
    /// Loopback only.
    None,
}

/// `--runtime` of `sealcraft build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    /// runc.
    Runc,
    /// crun.
    Crun,
}

/// `--compression` of new layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// gzip (what every reader takes).
    Gzip,
    /// zstd.
    Zstd,
    /// Uncompressed tar.
    None,
}

/// A severity level of `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// UNKNOWN.
    Unknown,
    /// LOW.
    Low,
    /// MEDIUM.
    Medium,
    /// HIGH.
    High,
    /// CRITICAL.
    Critical,
}

/// A stage of `sealcraft run`, for `--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Pins and inputs checked.
    Preflight,
    /// The image produced.
    Build,
    /// The hardened image.
    Harden,
    /// OS packages with fixes installed.
    Patch,
    /// All layers in one.
    Squash,
    /// Image tests.
    Test,
    /// SBOM documents.
    Sbom,
    /// Vulnerability scan and gate.
    Scan,
    /// Provenance and artifact signatures.
    Attest,
    /// Artifacts to object storage.
    Upload,
    /// Signed, then pushed.
    Publish,
}

/// `--build-arg KEY[=VALUE]`: without a value, the environment's (as docker does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArg {
    /// The argument's name.
    pub name: String,
    /// Its value, when given on the command line.
    pub value: Option<String>,
}

/// `--secret id=ID,src=FILE|env=NAME|ref=REF`, as a secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArg {
    /// The id RUN --mount=type=secret names.
    pub id: String,
    /// Where the value comes from: `file:PATH`, `env:NAME` or any secret reference.
    pub reference: String,
}

/// Why a flag's value is refused (clap shows it with the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `KEY=VALUE`.
    #[error("{text:?} is not KEY=VALUE")]
    NotAPair {
        /// The value given.
        text: String,
    },
    /// `=VALUE` without a name.
    #[error("{text:?}: the name is empty")]
    EmptyName {
        /// The value given.
        text: String,
    },
    /// A `--secret` field that is not id, src, env, ref or type.
    #[error("{text:?}: expected id=ID with src=FILE, env=NAME or ref=env:/file:/vault: reference")]
    BadSecret {
        /// The value given.
        text: String,
    },
    /// A `--secret` without an id.
    #[error("{text:?} needs id=…")]
    NoSecretId {
        /// The value given.
        text: String,
    },
}

/// `KEY=VALUE` with a non-empty key and value.
fn parse_pair(text: &str) -> Result<(String, String), ValueError> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(ValueError::NotAPair {
            text: text.to_owned(),
        }),
    }
}

fn parse_build_arg(text: &str) -> Result<BuildArg, ValueError> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(ValueError::EmptyName {
            text: text.to_owned(),
        });
    }
    Ok(BuildArg {
        name: name.to_owned(),
        value,
    })
}

fn parse_secret(text: &str) -> Result<SecretArg, ValueError> {
    let mut id = None;
    let mut reference = None;
    for field in text.split(',') {
        match field.split_once('=') {
            Some(("id", value)) => id = Some(value.to_owned()),
            Some(("src" | "source", value)) => reference = Some(format!("file:{value}")),
            Some(("env", value)) => reference = Some(format!("env:{value}")),
            Some(("ref", value)) => reference = Some(value.to_owned()),
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(ValueError::BadSecret {
                    text: text.to_owned(),
                });
            }
        }
    }
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return Err(ValueError::NoSecretId {
            text: text.to_owned(),
        });
    };
    // Like buildx: a bare id reads the environment variable of that name.
    let reference = reference.unwrap_or_else(|| format!("env:{id}"));
    Ok(SecretArg { id, reference })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_says_what_sealcraft_is() {
        let help = Cli::command().render_help().to_string();
        assert!(help.starts_with(ABOUT), "{help}");
        assert!(!help.contains("argument structs"), "{help}");
    }

    #[test]
    fn values_parse_into_types() {
        let cli = Cli::try_parse_from([
            "sealcraft",
            "build",
            "--build-arg",
            "A=1",
            "--build-arg",
            "FROM_ENV",
            "--secret",
            "id=token,src=/run/t",
            "--base",
            "debian=oci:/b:x@sha256:00",
            "--network",
            "none",
            "--compression",
            "zstd",
            "--output",
            "oci:out:tag",
        ])
        .unwrap();
        let Command::Build(args) = cli.command else {
            panic!("a build command expected");
        };
        assert_eq!(
            args.build_arg,
            [
                BuildArg {
                    name: "A".into(),
                    value: Some("1".into())
                },
                BuildArg {
                    name: "FROM_ENV".into(),
                    value: None
                }
            ]
        );
        assert_eq!(args.secret[0].reference, "file:/run/t");
        assert_eq!(args.base[0].0, "debian");
        assert_eq!(args.network, NetworkArg::None);
        assert_eq!(args.compression, CompressionArg::Zstd);
        for bad in [
            [
                "sealcraft",
                "build",
                "--base",
                "nameonly",
                "--output",
                "oci:o:t",
            ],
            [
                "sealcraft",
                "build",
                "--secret",
                "src=/x",
                "--output",
                "oci:o:t",
            ],
            [
                "sealcraft",
                "build",
                "--network",
                "bridge",
                "--output",
                "oci:o:t",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let scan = Cli::try_parse_from([
            "sealcraft",
            "scan",
            "oci:x",
            "--db",
            "d",
            "--fail-on",
            "low,Critical",
        ])
        .unwrap();
        let Command::Scan(args) = scan.command else {
            panic!("a scan command expected");
        };
        assert_eq!(args.fail_on, [SeverityArg::Low, SeverityArg::Critical]);
    }
}
