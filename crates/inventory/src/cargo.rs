//! Rust binaries built with cargo-auditable: the zlib-compressed JSON in
//! their `.dep-v0` ELF section lists every crate compiled in.

use std::io::Read;

use serde::Deserialize;

use crate::InventoryCode;
use crate::{FileSource, Inventory, Limits, Package, PackageType, SourceFile, display, purl, warn};

const SECTION: &str = ".dep-v0";
/// Largest compressed or decompressed dependency list read.
const MAX_SECTION_BYTES: u64 = 8 << 20;

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
}

/// Why a `.dep-v0` section cannot be read.
#[derive(Debug, thiserror::Error)]
enum AuditDataError {
    #[error("{SECTION} section of {0} bytes is larger than {MAX_SECTION_BYTES}")]
    TooLarge(u64),
    #[error("{SECTION} section lies outside the file")]
    OutsideFile,
    #[error("{SECTION} section does not decompress")]
    Decompress(#[source] std::io::Error),
    #[error("{SECTION} section is not a dependency list")]
    NotDependencies(#[source] serde_json::Error),
}

/// The crates listed in an ELF file's `.dep-v0` section, if it has one.
fn audit_data(
    read: &dyn Fn(u64, u64) -> Option<Vec<u8>>,
) -> Result<Option<AuditData>, AuditDataError> {
    let Some((offset, size)) = sealcraft_elf::find_section(read, SECTION) else {
        return Ok(None);
    };
    if size > MAX_SECTION_BYTES {
        return Err(AuditDataError::TooLarge(size));
    }
    let compressed = read(offset, size).ok_or(AuditDataError::OutsideFile)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_SECTION_BYTES)
        .read_to_end(&mut json)
        .map_err(AuditDataError::Decompress)?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(AuditDataError::NotDependencies)
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    inventory: &mut Inventory,
) {
    // Executables only: that is where cargo-auditable data lives.
    for file in crate::binaries::executables(files, limits) {
        let read = crate::binaries::exact_reads(source, &file.path);
        match audit_data(&read) {
            Ok(None) => {}
            Err(error) => warn(
                inventory,
                InventoryCode::CargoAuditableMalformed,
                &file.path,
                sealcraft_findings::chain(&error),
            ),
            Ok(Some(data)) => {
                for package in data.packages {
                    // Build-time dependencies (build scripts, proc macros) are not in the binary.
                    if package.kind.as_deref() == Some("build") {
                        continue;
                    }
                    inventory.packages.push(Package {
                        kind: PackageType::Cargo,
                        purl: purl(
                            PackageType::Cargo,
                            None,
                            &package.name,
                            &package.version,
                            &[],
                        ),
                        name: package.name,
                        version: package.version,
                        licenses: Vec::new(),
                        source: None,
                        architecture: None,
                        locations: vec![display(&file.path)],
                        files: Vec::new(),
                        layer: file.layer,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn garbage_elf_data_never_panics(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            if bytes.len() > 6 {
                bytes[..4].copy_from_slice(b"\x7fELF");
            }
            let read = |offset: u64, length: u64| {
                let start = usize::try_from(offset).ok()?;
                let end = start.checked_add(usize::try_from(length).ok()?)?;
                bytes.get(start..end).map(<[u8]>::to_vec)
            };
            let _ = audit_data(&read);
        }
    }
}
