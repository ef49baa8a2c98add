//! What is installed in an image.
//!
//! Catalogers read an image through the merged layer view (nothing is
//! unpacked) or a root filesystem directory, via [`FileSource`], and
//! return an [`Inventory`]: packages with type, name, version, purl,
//! declared licenses, source package, the files that evidence them and the
//! layer that introduced them. Malformed input never aborts cataloging: it
//! becomes a [`Warning`] with a stable code, and the rest is still read.
//!
//! purls follow the purl spec; Debian purls use syft's style:
//! `pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib`
//! (epoch inside the version, the source package in `upstream=` with its
//! version appended as `%40<version>` when it differs, the major release in
//! `distro=`).

pub mod accounts;
mod apk;
mod binaries;
mod cargo;
mod dpkg;
mod elf_objects;
mod golang;
mod npm;
mod os;
mod python;
pub mod rpm;
mod source;

use std::path::Path;

use serde::Serialize;

pub use accounts::{AccountError, Accounts, ResolvedUser, RootUserError};
pub use elf_objects::{elf_objects, loader_conf_dirs};
pub use os::OsRelease;
pub use python::normalize_name as normalize_python_name;
pub use source::{DirectorySource, FileSource, SourceFile, ViewSource};

/// The package ecosystems sealcraft catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    /// Debian packages (dpkg).
    Deb,
    /// Alpine packages.
    Apk,
    /// Python distributions.
    Pypi,
    /// npm packages.
    Npm,
    /// Rust crates (from cargo-auditable binaries).
    Cargo,
    /// Go modules (from the build information of Go binaries).
    Golang,
    /// RPM packages.
    Rpm,
}

impl PackageType {
    /// The purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Self::Deb => "deb",
            Self::Apk => "apk",
            Self::Pypi => "pypi",
            Self::Npm => "npm",
            Self::Cargo => "cargo",
            Self::Golang => "golang",
            Self::Rpm => "rpm",
        }
    }
}

/// The source package a binary package was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcePackage {
    /// Source package name.
    pub name: String,
    /// Source package version.
    pub version: String,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// Ecosystem.
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// Name as the ecosystem writes it.
    pub name: String,
    /// Version as the ecosystem writes it (Debian: with the epoch).
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// Declared licenses, as found.
    pub licenses: Vec<String>,
    /// The source package (Debian, Alpine origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    /// CPU architecture, when the ecosystem records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Files that evidence the package (its database entry or metadata file).
    pub locations: Vec<String>,
    /// Files the package owns, when its database lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The layer (0 = base) that introduced the evidence, for images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

sealcraft_findings::codes! {
    /// What can go wrong while reading an inventory (from an image, a
    /// directory or an SBOM); the rest is still read.
    pub enum InventoryCode: domain "inventory", subject "path" {
        /// A metadata file is larger than the limit and was skipped.
        MetadataTooLarge = "metadata-too-large": "a metadata file is larger than the limit and was skipped",
        /// A file could not be read.
        UnreadableFile = "unreadable-file": "a file could not be read",
        /// A dpkg database entry lacks Package or Version.
        DpkgMalformedEntry = "dpkg-malformed-entry": "a dpkg database entry lacks Package or Version",
        /// An apk database entry lacks P: or V:.
        ApkMalformedEntry = "apk-malformed-entry": "an apk database entry lacks P: or V:",
        /// The RPM database could not be opened.
        RpmdbUnreadable = "rpmdb-unreadable": "the RPM database could not be opened",
        /// An RPM package header could not be parsed.
        RpmdbMalformedHeader = "rpmdb-malformed-header": "an RPM package header could not be parsed",
        /// Python metadata lacks Name or Version.
        PythonMetadataIncomplete = "python-metadata-incomplete": "Python metadata lacks Name or Version",
        /// An npm lockfile is not JSON.
        NpmLockfileMalformed = "npm-lockfile-malformed": "an npm lockfile is not JSON",
        /// An npm package.json is not JSON.
        NpmPackageJsonMalformed = "npm-package-json-malformed": "an npm package.json is not JSON",
        /// A binary's cargo-auditable data is malformed.
        CargoAuditableMalformed = "cargo-auditable-malformed": "a binary's cargo-auditable data is malformed",
        /// A Go binary's build information is malformed.
        GoBuildinfoMalformed = "go-buildinfo-malformed": "a Go binary's build information is malformed",
        /// An SBOM names a package with something that is not a package URL.
        SbomBadPurl = "sbom-bad-purl": "an SBOM names a package with something that is not a package URL",
    }
}

/// Something that could not be read as expected.
pub type Warning = sealcraft_findings::Warning<InventoryCode>;

/// Everything found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    /// The operating system, from os-release.
    pub os: Option<OsRelease>,
    /// Packages, sorted by type, name, version and location.
    pub packages: Vec<Package>,
    /// Problems met while reading.
    pub warnings: Vec<Warning>,
}

impl Inventory {
    /// Package counts by type.
    pub fn counts(&self) -> std::collections::BTreeMap<PackageType, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for package in &self.packages {
            *counts.entry(package.kind).or_insert(0) += 1;
        }
        counts
    }
}

/// Limits on what catalogers read.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest metadata file read (status databases, METADATA, package.json).
    pub max_metadata_bytes: u64,
    /// Largest binary inspected for embedded dependency data.
    pub max_binary_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 64 << 20,
            max_binary_bytes: 512 << 20,
        }
    }
}

/// The operating system `source` holds, from its os-release.
pub fn os_release(source: &dyn FileSource) -> Option<OsRelease> {
    os::read(source)
}

/// Catalogs everything `source` holds.
pub fn catalog(source: &dyn FileSource, limits: &Limits) -> Inventory {
    let mut inventory = Inventory {
        os: os::read(source),
        ..Inventory::default()
    };
    let files = source.files();
    let distro = inventory.os.as_ref().map(OsRelease::purl_distro);
    let namespace = inventory.os.as_ref().map(|os| os.id.clone());
    dpkg::catalog(
        source,
        &files,
        limits,
        namespace.as_deref().unwrap_or("debian"),
        distro.as_deref(),
        &mut inventory,
    );
    apk::catalog(source, &files, limits, distro.as_deref(), &mut inventory);
    rpm::catalog(
        source,
        &files,
        limits,
        distro.as_deref(),
        namespace.as_deref().unwrap_or("redhat"),
        &mut inventory,
    );
    python::catalog(source, &files, limits, &mut inventory);
    npm::catalog(source, &files, limits, &mut inventory);
    cargo::catalog(source, &files, limits, &mut inventory);
    golang::catalog(source, &files, limits, &mut inventory);
    inventory.packages.sort_by(|a, b| {
        (a.kind, &a.name, &a.version, &a.locations).cmp(&(
            b.kind,
            &b.name,
            &b.version,
            &b.locations,
        ))
    });
    inventory
        .warnings
        .sort_by(|a, b| (&a.subject, a.code).cmp(&(&b.subject, b.code)));
    inventory
}

/// Catalogs an image of `layout` through its merged view; nothing is unpacked.
pub fn catalog_image(
    layout: &sealcraft_oci::layout::Layout,
    image: &sealcraft_oci::image::Image,
    limits: &Limits,
) -> Result<Inventory, sealcraft_oci::Error> {
    let view = sealcraft_oci::view::MergedView::from_image(
        layout,
        &image.manifest,
        &image.config,
        &sealcraft_oci::layer::LayerLimits::default(),
    )?;
    Ok(catalog(&ViewSource(&view), limits))
}

/// Percent-encodes a purl component (name, version or qualifier value):
/// unreserved characters, `~` and `:` stay, everything else is encoded.
pub fn purl_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `pkg:type/namespace/name@version?k=v&…` with qualifiers in key order.
pub(crate) fn purl(
    kind: PackageType,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, String)],
) -> String {
    let mut purl = format!("pkg:{}/", kind.purl_type());
    if let Some(namespace) = namespace {
        for segment in namespace.split('/') {
            purl.push_str(&purl_encode(segment));
            purl.push('/');
        }
    }
    purl.push_str(&purl_encode(name));
    if !version.is_empty() {
        purl.push('@');
        purl.push_str(&purl_encode(version));
    }
    let mut qualifiers: Vec<&(&str, String)> = qualifiers
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    qualifiers.sort_by_key(|(key, _)| *key);
    for (index, (key, value)) in qualifiers.iter().enumerate() {
        purl.push(if index == 0 { '?' } else { '&' });
        purl.push_str(key);
        purl.push('=');
        purl.push_str(&purl_encode(value));
    }
    purl
}

pub(crate) fn display(path: &Path) -> String {
    format!("/{}", path.display())
}

pub(crate) fn warn(
    inventory: &mut Inventory,
    code: InventoryCode,
    path: &Path,
    message: impl Into<String>,
) {
    inventory
        .warnings
        .push(Warning::new(code, display(path), message));
}

/// Reads a metadata file, turning problems into warnings.
pub(crate) fn read_metadata(
    source: &dyn FileSource,
    file: &SourceFile,
    limits: &Limits,
    inventory: &mut Inventory,
) -> Option<Vec<u8>> {
    if file.size > limits.max_metadata_bytes {
        warn(
            inventory,
            InventoryCode::MetadataTooLarge,
            &file.path,
            format!(
                "{} bytes, more than the limit of {}; skipped",
                file.size, limits.max_metadata_bytes
            ),
        );
        return None;
    }
    match source.read(&file.path, limits.max_metadata_bytes) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            warn(
                inventory,
                InventoryCode::UnreadableFile,
                &file.path,
                error.to_string(),
            );
            None
        }
    }
}

/// A parsed package URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// `deb`, `pypi`, …
    pub kind: String,
    /// The namespace (`debian`, an npm scope), decoded.
    pub namespace: Option<String>,
    /// The name, decoded.
    pub name: String,
    /// The version, decoded.
    pub version: Option<String>,
    /// Qualifiers, decoded.
    pub qualifiers: std::collections::BTreeMap<String, String>,
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 3 <= bytes.len()
            && let Ok(value) = u8::from_str_radix(
                std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or(""),
                16,
            )
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Purl {
    /// Parses `pkg:type/namespace/name@version?qualifiers#subpath`.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("pkg:")?;
        let rest = rest.split('#').next().unwrap_or(rest);
        let (rest, qualifiers) = match rest.split_once('?') {
            Some((rest, qualifiers)) => (rest, qualifiers),
            None => (rest, ""),
        };
        let (kind, path) = rest.split_once('/')?;
        let (path, version) = match path.rsplit_once('@') {
            Some((path, version)) => (path, Some(percent_decode(version))),
            None => (path, None),
        };
        let (namespace, name) = match path.rsplit_once('/') {
            Some((namespace, name)) => (
                Some(
                    namespace
                        .split('/')
                        .map(percent_decode)
                        .collect::<Vec<_>>()
                        .join("/"),
                ),
                percent_decode(name),
            ),
            None => (None, percent_decode(path)),
        };
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let qualifiers = qualifiers
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_ascii_lowercase(), percent_decode(value)))
            .collect();
        Some(Self {
            kind: kind.to_ascii_lowercase(),
            namespace,
            name,
            version,
            qualifiers,
        })
    }
}

#[cfg(test)]
mod purl_tests {
    use super::*;

    #[test]
    fn purls_round_trip() {
        let text = purl(
            PackageType::Deb,
            Some("debian"),
            "libssh2-1",
            "1.10.0-3+b1",
            &[
                ("upstream", "libssh2@1.10.0-3".into()),
                ("arch", "amd64".into()),
                ("distro", "debian-12".into()),
            ],
        );
        assert_eq!(
            text,
            "pkg:deb/debian/libssh2-1@1.10.0-3%2Bb1?arch=amd64&distro=debian-12&upstream=libssh2%401.10.0-3"
        );
        let parsed = Purl::parse(&text).unwrap();
        assert_eq!(parsed.version.as_deref(), Some("1.10.0-3+b1"));
        assert_eq!(parsed.qualifiers["upstream"], "libssh2@1.10.0-3");
        let scoped = Purl::parse("pkg:npm/%40types/node@20.1.0").unwrap();
        assert_eq!(
            (scoped.namespace.as_deref(), scoped.name.as_str()),
            (Some("@types"), "node")
        );
        assert!(Purl::parse("not-a-purl").is_none());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,120}") {
            let _ = Purl::parse(&text);
            let _ = Purl::parse(&format!("pkg:{text}"));
        }
    }
}
