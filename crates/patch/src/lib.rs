//! The patch stage: OS packages with available fixes installed as one
//! new layer, natively. No daemon, no container and no package manager
//! runs, so hardened images (no apt, no dpkg) patch like any other.
//!
//! 1. What to update: the `os-pkgs` findings of a Trivy-format report that
//!    have a fixed version (the highest per package), or every package a
//!    newer version is offered of;
//! 2. where from: the configured sources, the image's, or the host's
//!    ([`sources`]), each suite verified through its signature
//!    (`sealcraft-apt`);
//! 3. which versions: [`resolve`] (candidates, dependencies, Breaks,
//!    Multi-Arch), refused as a whole when anything cannot be satisfied;
//! 4. the layer: [`dpkg_layer`] writes the new packages' files, whiteouts,
//!    conffiles as dpkg keeps them, and the database;
//! 5. re-patching: the image records its pre-patch digest and the patch
//!    layer's diff ID in labels; patching a patched image replaces that
//!    layer instead of stacking another.
//!
//! Maintainer scripts are not run; the report names the packages that
//! have them. An image of another package manager gets a clear "not
//! supported yet"; the stage is shaped so an apk or RPM backend plugs in
//! beside dpkg.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::SystemTime;

use sealcraft_apt::{Fetcher, KeyFiles, Repository, RepositorySpec, Source};
use sealcraft_deb::DebPackage;
use sealcraft_inventory::ViewSource;
use sealcraft_oci::digest::parse_digest;
use sealcraft_oci::image::{Image, LayerOptions, commit_image, rfc3339};
use sealcraft_oci::layer::{Compression, LayerLimits};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, HistoryEntry};
use sealcraft_oci::view::MergedView;
use sealcraft_pkgdb::dpkg::DpkgDatabase;
use sealcraft_vuln::severity::Severity;
use sealcraft_vuln::trivy::UpdateRequest;
use serde::Serialize;

pub mod dpkg_layer;
pub mod resolve;
pub mod sources;

pub use dpkg_layer::LayerSummary;
pub use resolve::{ChangeReason, ResolveError, Skipped};
pub use sources::SourceOrigin;

/// The label with the digest of the image before it was patched.
pub const BASE_LABEL: &str = "dev.sealcraft.patch.base";
/// The label with the patch layer's diff ID.
pub const LAYER_LABEL: &str = "dev.sealcraft.patch.layer";
/// The label with the tool that wrote the patch.
pub const TOOL_LABEL: &str = "dev.sealcraft.patch.tool";

/// Maintainer scripts and triggers: what dpkg would run and a patch does not.
const SCRIPTS: [&str; 6] = [
    "preinst", "postinst", "prerm", "postrm", "config", "triggers",
];

/// Why an image cannot be patched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OCI layer failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// The package database could not be read.
    #[error(transparent)]
    PackageDb(#[from] sealcraft_pkgdb::Error),
    /// A `.deb` could not be read or installed.
    #[error(transparent)]
    Package(#[from] sealcraft_deb::Error),
    /// A suite could not be read or verified.
    #[error(transparent)]
    Repository(#[from] sealcraft_apt::RepositoryError),
    /// A package could not be downloaded.
    #[error(transparent)]
    Fetch(#[from] sealcraft_apt::FetchError),
    /// An apt sources file is malformed.
    #[error(transparent)]
    Sources(sealcraft_apt::SourcesError),
    /// The updates cannot be resolved.
    #[error("the patch cannot be resolved")]
    Resolve(#[from] ResolveError),
    /// The image's package manager has no patch backend yet.
    #[error(
        "patching {os} images ({manager} packages) is not supported yet; only dpkg (Debian, Ubuntu) images can be patched"
    )]
    Unsupported {
        /// The OS, as os-release names it.
        os: String,
        /// The package manager.
        manager: &'static str,
    },
    /// No package database at all.
    #[error(
        "the image has no package database (no dpkg status, status.d, apk or RPM database): there is nothing to patch"
    )]
    NoPackageDatabase,
    /// No source to read packages from.
    #[error(
        "no apt sources: the configuration names none, the image has none, and neither has this machine"
    )]
    NoSources,
    /// The image's config names no architecture.
    #[error("the image config names no architecture")]
    NoArchitecture,
    /// A downloaded package is not the one its index entry describes.
    #[error("{file}: the package is {found}, but the signed index describes {expected}")]
    PackageMismatch {
        /// The `.deb`.
        file: PathBuf,
        /// `name version arch` from the index.
        expected: String,
        /// `name version arch` from its control file.
        found: String,
    },
    /// A package that must not be installed without its scripts has some.
    #[error("{package} has maintainer scripts ({}), and the configuration refuses to install it without running them", scripts.join(", "))]
    RefusedScripts {
        /// The package.
        package: String,
        /// Its scripts.
        scripts: Vec<String>,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to update.
#[derive(Debug, Clone)]
pub enum PatchRequest {
    /// The fixes a report names.
    Fixes(UpdateRequest),
    /// Every package with a newer version in the suites.
    Everything,
}

/// How to reach the package archives.
pub struct AptAccess<'a> {
    /// Sources the configuration names (empty: the image's, else the host's).
    pub configured: &'a [Source],
    /// The host's apt sources.
    pub host_sources: &'a [Source],
    /// The host's keyrings.
    pub host_keys: &'a dyn KeyFiles,
    /// Downloads and their cache.
    pub fetcher: &'a Fetcher,
    /// The time Release dates are checked against.
    pub now: SystemTime,
    /// Refuse Release files past their Valid-Until.
    pub check_valid_until: bool,
}

/// A patch to make.
pub struct PatchSpec<'a> {
    /// What to update.
    pub request: &'a PatchRequest,
    /// Where packages come from.
    pub apt: &'a AptAccess<'a>,
    /// Packages that must not be installed without running their maintainer scripts.
    pub refuse_scripts: &'a BTreeSet<String>,
    /// SOURCE_DATE_EPOCH: the layer's times and the history entry.
    pub source_date_epoch: i64,
    /// The layer's compression.
    pub compression: Compression,
    /// `sealcraft <version>`, recorded in a label.
    pub tool: &'a str,
    /// Resolve and download, but write no image.
    pub dry_run: bool,
}

/// One package the patch installs.
#[derive(Debug, Clone, Serialize)]
pub struct UpdatedPackage {
    /// The package.
    pub name: String,
    /// Its architecture.
    pub architecture: String,
    /// The version it replaces (`None`: newly installed).
    pub from: Option<String>,
    /// The version installed.
    pub to: String,
    /// Why.
    pub reason: ChangeReason,
    /// Where the `.deb` came from.
    pub url: String,
    /// The `.deb`'s SHA-256 (as the signed index names it).
    pub sha256: String,
    /// The `.deb`'s size.
    pub size: u64,
}

/// A vulnerability the patch fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedVulnerability {
    /// The vulnerability.
    pub id: String,
    /// The package.
    pub package: String,
    /// Its version before.
    pub installed_version: String,
    /// The version that fixes it.
    pub fixed_version: String,
    /// The version installed now.
    pub patched_version: String,
    /// Its severity.
    pub severity: Severity,
    /// The purl of the package as installed now.
    pub purl: String,
}

/// A suite the patch read, and the signed file that vouched for it.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRead {
    /// The InRelease (or Release) URL.
    pub release_url: String,
    /// Its SHA-256.
    pub release_sha256: String,
}

/// Maintainer scripts a package has that the patch did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptsNotRun {
    /// The package.
    pub package: String,
    /// Its scripts (`postinst`, `triggers`, …).
    pub scripts: Vec<String>,
}

/// The layer a patch added.
#[derive(Debug, Clone, Serialize)]
pub struct PatchLayer {
    /// Its blob.
    pub descriptor: Descriptor,
    /// Its diff ID.
    pub diff_id: String,
    /// Its uncompressed size.
    pub uncompressed_size: u64,
    /// What it did.
    pub summary: LayerSummary,
}

/// What a patch did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PatchReport {
    /// The OS (`debian 12`).
    pub os: Option<String>,
    /// The digest of the unpatched image (an earlier patch's base when re-patching).
    pub base_digest: String,
    /// Whether an earlier patch layer was replaced.
    pub replaced_patch_layer: bool,
    /// Where the sources came from.
    pub sources: SourceOrigin,
    /// The suites read.
    pub suites: Vec<SuiteRead>,
    /// The packages installed.
    pub updated: Vec<UpdatedPackage>,
    /// Requests that needed nothing.
    pub skipped: Vec<Skipped>,
    /// The vulnerabilities fixed.
    pub fixed: Vec<FixedVulnerability>,
    /// Fixed vulnerabilities by severity.
    pub fixed_by_severity: BTreeMap<Severity, usize>,
    /// Scripts that were not run.
    pub scripts_not_run: Vec<ScriptsNotRun>,
    /// The layer, when one was written.
    pub layer: Option<PatchLayer>,
    /// The patched image (the input image when nothing needed patching), unless a dry run.
    pub manifest: Option<Descriptor>,
    /// Nothing was written.
    pub dry_run: bool,
}

impl PatchReport {
    /// The fixes as the OpenVEX document names them (vulnerability, package purl).
    pub fn fixed_components(&self) -> Vec<sealcraft_vuln::vex::FixedComponent> {
        self.fixed
            .iter()
            .map(|vulnerability| sealcraft_vuln::vex::FixedComponent {
                vulnerability: vulnerability.id.clone(),
                purl: vulnerability.purl.clone(),
            })
            .collect()
    }
}

/// The image a patch builds on: the image itself, or, when its top layer
/// is an earlier patch, the image without it.
struct Base {
    manifest: sealcraft_oci::manifest::Manifest,
    config: sealcraft_oci::manifest::ImageConfig,
    digest: String,
    replaced: bool,
}

fn base_of(image: &Image) -> Result<Base> {
    let runtime = image.config.runtime_config();
    let labels = runtime.labels.clone().unwrap_or_default();
    let diff_ids = image.config.diff_ids();
    let patched = labels
        .get(LAYER_LABEL)
        .is_some_and(|layer| diff_ids.last() == Some(layer))
        && image.manifest.layers.len() == diff_ids.len();
    if !patched {
        return Ok(Base {
            manifest: image.manifest.clone(),
            config: image.config.clone(),
            digest: image.descriptor.digest.to_string(),
            replaced: false,
        });
    }
    let mut manifest = image.manifest.clone();
    manifest.layers.pop();
    let mut config = image.config.clone();
    let mut ids = Vec::new();
    for id in &diff_ids[..diff_ids.len() - 1] {
        ids.push(parse_digest(id)?);
    }
    config.set_diff_ids(&ids);
    let mut history = config.history();
    if let Some(index) = history.iter().rposition(|entry| !entry.empty_layer) {
        history.remove(index);
    }
    config.set_history(&history);
    config.edit_runtime_config(|runtime| {
        if let Some(labels) = runtime.labels.as_mut() {
            for label in [BASE_LABEL, LAYER_LABEL, TOOL_LABEL] {
                labels.remove(label);
            }
        }
    });
    Ok(Base {
        manifest,
        config,
        digest: labels
            .get(BASE_LABEL)
            .cloned()
            .unwrap_or_else(|| image.descriptor.digest.to_string()),
        replaced: true,
    })
}

/// Which package manager an image without a dpkg database uses, if any.
fn other_manager(view: &MergedView) -> Option<&'static str> {
    if view.get("lib/apk/db/installed").is_some() {
        Some("apk")
    } else if view.get(sealcraft_inventory::rpm::DATABASE).is_some()
        || view.get("var/lib/rpm/Packages").is_some()
    {
        Some("RPM")
    } else {
        None
    }
}

fn deb_purl(
    os: Option<&sealcraft_inventory::OsRelease>,
    name: &str,
    version: &str,
    architecture: &str,
) -> String {
    use sealcraft_inventory::purl_encode;
    let namespace = os.map_or("debian", |os| os.id.as_str());
    let mut purl = format!(
        "pkg:deb/{}/{}@{}?arch={}",
        purl_encode(namespace),
        purl_encode(name),
        purl_encode(version),
        purl_encode(architecture)
    );
    if let Some(os) = os {
        purl.push_str("&distro=");
        purl.push_str(&purl_encode(&os.purl_distro()));
    }
    purl
}

/// Downloads in flight at once.
const PARALLEL_DOWNLOADS: usize = 4;

/// The `.deb` of every change, in order, each verified against its signed index entry.
fn download_all(
    repository: &Repository,
    changes: &[resolve::Change<'_>],
    fetcher: &Fetcher,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(changes.len());
    for batch in changes.chunks(PARALLEL_DOWNLOADS) {
        let fetched: Vec<Result<PathBuf, sealcraft_apt::FetchError>> =
            std::thread::scope(|scope| {
                let threads: Vec<_> = batch
                    .iter()
                    .map(|change| scope.spawn(|| repository.download(change.entry, fetcher)))
                    .collect();
                threads
                    .into_iter()
                    .map(|thread| {
                        thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            });
        for file in fetched {
            files.push(file?);
        }
    }
    Ok(files)
}

/// Patches `image` (of `source`) into `output`.
pub fn patch(
    source: &Layout,
    image: &Image,
    output: &Layout,
    spec: &PatchSpec<'_>,
) -> Result<PatchReport> {
    let limits = LayerLimits::default();
    let base = base_of(image)?;
    let view = MergedView::from_image(source, &base.manifest, &base.config, &limits)?;
    let os = sealcraft_inventory::os_release(&ViewSource(&view));
    let os_name = os.as_ref().map(|os| format!("{} {}", os.id, os.version_id));
    let Some(mut database) = DpkgDatabase::read(&ViewSource(&view))? else {
        return Err(match other_manager(&view) {
            Some(manager) => Error::Unsupported {
                os: os_name.unwrap_or_else(|| "these".into()),
                manager,
            },
            None => Error::NoPackageDatabase,
        });
    };
    let native = base
        .config
        .architecture()
        .ok_or(Error::NoArchitecture)?
        .to_owned();
    let mut architectures = vec![native.clone()];
    for record in database.records.iter().filter(|record| record.installed) {
        if record.architecture != "all" && !architectures.contains(&record.architecture) {
            architectures.push(record.architecture.clone());
        }
    }

    // Where packages come from.
    let image_sources = sources::image_sources(&view)?;
    let image_keys = sources::ImageKeys {
        view: &view,
        host: spec.apt.host_keys,
    };
    let (chosen, keys, origin): (&[Source], &dyn KeyFiles, SourceOrigin) =
        if !spec.apt.configured.is_empty() {
            (
                spec.apt.configured,
                spec.apt.host_keys,
                SourceOrigin::Configured,
            )
        } else if !image_sources.is_empty() {
            (&image_sources, &image_keys, SourceOrigin::Image)
        } else if !spec.apt.host_sources.is_empty() {
            (
                spec.apt.host_sources,
                spec.apt.host_keys,
                SourceOrigin::Host,
            )
        } else {
            return Err(Error::NoSources);
        };
    let repository = Repository::open(
        &RepositorySpec {
            sources: chosen,
            keys,
            architectures: &architectures,
            now: spec.apt.now,
            check_valid_until: spec.apt.check_valid_until,
        },
        spec.apt.fetcher,
    )?;

    // What to update, with what an earlier patch installed carried forward.
    let mut request = match spec.request {
        PatchRequest::Fixes(fixes) => resolve::Request::Packages(
            fixes
                .packages
                .iter()
                .map(|(name, version)| (name.clone(), Some(version.clone())))
                .collect(),
        ),
        PatchRequest::Everything => resolve::Request::Everything,
    };
    if base.replaced
        && let resolve::Request::Packages(packages) = &mut request
    {
        let full = MergedView::from_image(source, &image.manifest, &image.config, &limits)?;
        if let Some(patched) = DpkgDatabase::read(&ViewSource(&full))? {
            for record in patched.records.iter().filter(|record| record.installed) {
                let before = database.find(&record.name, &record.architecture);
                if before.is_none_or(|before| before.version != record.version) {
                    packages
                        .entry(record.name.clone())
                        .and_modify(|minimum| {
                            let keep = minimum.as_deref().is_some_and(|minimum| {
                                sealcraft_vuln::trivy::compare_os_versions(
                                    "debian",
                                    minimum,
                                    &record.version,
                                )
                                .is_ok_and(|order| order.is_gt())
                            });
                            if !keep {
                                *minimum = Some(record.version.clone());
                            }
                        })
                        .or_insert_with(|| Some(record.version.clone()));
                }
            }
        }
    }
    let installed: Vec<resolve::InstalledUnit> = database
        .records
        .iter()
        .filter(|record| record.installed)
        .filter_map(|record| resolve::InstalledUnit::from_paragraph(&record.paragraph))
        .collect();
    let resolution = resolve::resolve(&installed, &repository.packages, &native, &request)?;

    // Every package downloaded (a few at a time: most of a download is
    // waiting), checked against its index entry, and opened.
    let files = download_all(&repository, &resolution.changes, spec.apt.fetcher)?;
    let mut debs = Vec::new();
    let mut updated = Vec::new();
    let mut scripts_not_run = Vec::new();
    for (change, file) in resolution.changes.iter().zip(files) {
        let entry = change.entry;
        let deb = DebPackage::open(&file)?;
        let found = format!("{} {} {}", deb.name(), deb.version(), deb.architecture());
        let expected = format!("{} {} {}", entry.name, entry.version, entry.architecture);
        if found != expected {
            return Err(Error::PackageMismatch {
                file,
                expected,
                found,
            });
        }
        let scripts: Vec<String> = SCRIPTS
            .iter()
            .filter(|script| deb.control_files.contains_key(**script))
            .map(|script| (*script).to_owned())
            .collect();
        if !scripts.is_empty() {
            if spec.refuse_scripts.contains(&entry.name) {
                return Err(Error::RefusedScripts {
                    package: entry.name.clone(),
                    scripts,
                });
            }
            scripts_not_run.push(ScriptsNotRun {
                package: entry.name.clone(),
                scripts,
            });
        }
        updated.push(UpdatedPackage {
            name: entry.name.clone(),
            architecture: entry.architecture.clone(),
            from: change.from.clone(),
            to: entry.version.clone(),
            reason: change.reason.clone(),
            url: format!(
                "{}/{}",
                repository.suites[entry.suite].source.uri,
                entry.filename.trim_start_matches('/')
            ),
            sha256: entry.sha256.clone(),
            size: entry.size,
        });
        debs.push(deb);
    }
    let mut fixed = Vec::new();
    if let PatchRequest::Fixes(fixes) = spec.request {
        for vulnerability in &fixes.fixable {
            let Some(package) = updated
                .iter()
                .find(|package| package.name == vulnerability.package)
            else {
                continue;
            };
            let fixes_it = sealcraft_vuln::trivy::compare_os_versions(
                "debian",
                &package.to,
                &vulnerability.fixed_version,
            )
            .is_ok_and(|order| order.is_ge());
            if fixes_it {
                fixed.push(FixedVulnerability {
                    id: vulnerability.id.clone(),
                    package: vulnerability.package.clone(),
                    installed_version: vulnerability.installed_version.clone(),
                    fixed_version: vulnerability.fixed_version.clone(),
                    patched_version: package.to.clone(),
                    severity: vulnerability.severity,
                    purl: deb_purl(
                        os.as_ref(),
                        &package.name,
                        &package.to,
                        &package.architecture,
                    ),
                });
            }
        }
    }
    let mut fixed_by_severity = BTreeMap::new();
    for vulnerability in &fixed {
        *fixed_by_severity.entry(vulnerability.severity).or_insert(0) += 1;
    }
    let mut report = PatchReport {
        os: os_name,
        base_digest: base.digest.clone(),
        replaced_patch_layer: base.replaced,
        sources: origin,
        suites: repository
            .suites
            .iter()
            .map(|suite| SuiteRead {
                release_url: suite.release_url.clone(),
                release_sha256: suite.release_sha256.clone(),
            })
            .collect(),
        updated,
        skipped: resolution.skipped.clone(),
        fixed,
        fixed_by_severity,
        scripts_not_run,
        layer: None,
        manifest: None,
        dry_run: spec.dry_run,
    };
    if spec.dry_run {
        return Ok(report);
    }
    if debs.is_empty() && !base.replaced {
        // Nothing to patch: the output is the image as it is.
        output.copy_blob_from(source, &image.descriptor)?;
        output.copy_blob_from(source, &image.manifest.config)?;
        for layer in &image.manifest.layers {
            output.copy_blob_from(source, layer)?;
        }
        report.manifest = Some(image.descriptor.clone());
        return Ok(report);
    }
    let options = LayerOptions {
        clamp_mtime: Some(spec.source_date_epoch),
        compression: spec.compression,
        keep_devices: false,
    };
    let deb_refs: Vec<&DebPackage> = debs.iter().collect();
    let (layer, summary) = dpkg_layer::write_patch_layer(
        &view,
        &mut database,
        &deb_refs,
        output,
        &options,
        spec.source_date_epoch,
    )?;
    // The view read and verified every base layer: link them rather than copy.
    for descriptor in &base.manifest.layers {
        output.link_verified_blob_from(source, descriptor)?;
    }
    let mut config = base.config.clone();
    let mut diff_ids = Vec::new();
    for id in config.diff_ids() {
        diff_ids.push(parse_digest(&id)?);
    }
    diff_ids.push(layer.diff_id.clone());
    config.set_diff_ids(&diff_ids);
    let created = rfc3339(spec.source_date_epoch);
    let mut history = config.history();
    history.push(HistoryEntry {
        created: Some(created.clone()),
        created_by: Some(format!(
            "sealcraft patch: {} packages updated, {} vulnerabilities fixed",
            report.updated.len(),
            report.fixed.len()
        )),
        comment: Some("OS packages with fixes installed from signed repositories".into()),
        author: None,
        empty_layer: false,
    });
    config.set_history(&history);
    config.set_created(&created);
    config.edit_runtime_config(|runtime| {
        let labels = runtime.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(BASE_LABEL.into(), base.digest.clone());
        labels.insert(LAYER_LABEL.into(), layer.diff_id.to_string());
        labels.insert(TOOL_LABEL.into(), spec.tool.to_owned());
    });
    let mut layers = base.manifest.layers.clone();
    layers.push(layer.descriptor.clone());
    let manifest = commit_image(output, &config, layers, image.manifest.annotations.clone())?;
    report.layer = Some(PatchLayer {
        descriptor: layer.descriptor.clone(),
        diff_id: layer.diff_id.to_string(),
        uncompressed_size: layer.uncompressed_size,
        summary,
    });
    report.manifest = Some(manifest);
    Ok(report)
}
