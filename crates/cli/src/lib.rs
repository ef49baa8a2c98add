//! sealcraft's command line as clap derive structs. Behaviour lives in the
//! binary's `commands/` modules; this crate only describes the surface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// From source to a signed, attested container image, and checks at the door.
#[derive(Debug, Parser)]
#[command(name = "sealcraft", version, about, propagate_version = true)]
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
    /// Squash all layers of an image into one, keeping every config field.
    Squash(SquashArgs),
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
    #[arg(long, value_delimiter = ',', default_value = "HIGH,CRITICAL")]
    pub fail_on: Vec<String>,
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
    #[arg(long, value_name = "TYPE=FILE")]
    pub attestation: Vec<String>,
    /// A claim in the signature payload: KEY=VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
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
    /// Stop after this stage (preflight, build, harden, squash, sbom, scan, attest, upload, publish).
    #[arg(long)]
    pub until: Option<String>,
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
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub build_arg: Vec<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE, id=ID,env=NAME or id=ID,ref=vault:…; repeatable.
    #[arg(long, value_name = "id=ID,src=FILE")]
    pub secret: Vec<String>,
    /// Use IMAGE wherever FROM or COPY --from names NAME: NAME=oci:DIR:TAG@sha256:… or NAME=HOST/REPO@sha256:…; repeatable.
    #[arg(long, value_name = "NAME=IMAGE")]
    pub base: Vec<String>,
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
    #[arg(long, default_value = "default", value_parser = ["default", "host", "none"])]
    pub network: String,
    /// The OCI runtime for RUN steps.
    #[arg(long, default_value = "runc", value_parser = ["runc", "crun"])]
    pub runtime: String,
    /// The architecture to build for (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none"])]
    pub compression: String,
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
    /// The architecture to pick from an index.
    #[arg(long)]
    pub arch: Option<String>,
}
