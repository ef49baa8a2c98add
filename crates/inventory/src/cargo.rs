//! Rust binaries built with cargo-auditable: the zlib-compressed JSON in
//! their `.dep-v0` ELF section lists every crate compiled in.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

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

/// Reads `count` bytes at `offset` of `bytes`-like ELF data through `read`.
struct Elf<'a> {
    read: &'a dyn Fn(u64, u64) -> Option<Vec<u8>>,
    is_64: bool,
    little_endian: bool,
}

impl Elf<'_> {
    fn number(&self, bytes: &[u8], offset: usize, width: usize) -> Option<u64> {
        let slice = bytes.get(offset..offset + width)?;
        let mut value: u64 = 0;
        for index in 0..width {
            let byte = if self.little_endian {
                slice[width - 1 - index]
            } else {
                slice[index]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    /// The (offset, size) of the section named `wanted`.
    fn find_section(&self, header: &[u8], wanted: &str) -> Option<(u64, u64)> {
        let (shoff, shentsize, shnum, shstrndx) = if self.is_64 {
            (
                self.number(header, 0x28, 8)?,
                self.number(header, 0x3A, 2)?,
                self.number(header, 0x3C, 2)?,
                self.number(header, 0x3E, 2)?,
            )
        } else {
            (
                self.number(header, 0x20, 4)?,
                self.number(header, 0x2E, 2)?,
                self.number(header, 0x30, 2)?,
                self.number(header, 0x32, 2)?,
            )
        };
        let minimum = if self.is_64 { 64 } else { 40 };
        if shnum == 0 || shentsize < minimum || shstrndx >= shnum || shnum > 65_535 {
            return None;
        }
        let table = (self.read)(shoff, shentsize.checked_mul(shnum)?)?;
        let section = |index: u64| -> Option<(u64, u64, u64)> {
            let base = usize::try_from(index * shentsize).ok()?;
            if self.is_64 {
                Some((
                    self.number(&table, base, 4)?,
                    self.number(&table, base + 0x18, 8)?,
                    self.number(&table, base + 0x20, 8)?,
                ))
            } else {
                Some((
                    self.number(&table, base, 4)?,
                    self.number(&table, base + 0x10, 4)?,
                    self.number(&table, base + 0x14, 4)?,
                ))
            }
        };
        let (_, names_offset, names_size) = section(shstrndx)?;
        let names = (self.read)(names_offset, names_size.min(1 << 20))?;
        for index in 0..shnum {
            let (name_offset, offset, size) = section(index)?;
            let name_start = usize::try_from(name_offset).ok()?;
            let name = names.get(name_start..)?.split(|&b| b == 0).next()?;
            if name == wanted.as_bytes() {
                return Some((offset, size));
            }
        }
        None
    }
}

/// The crates listed in an ELF file's `.dep-v0` section, if it has one.
fn audit_data(read: &dyn Fn(u64, u64) -> Option<Vec<u8>>) -> Result<Option<AuditData>, String> {
    let Some(header) = read(0, 64) else {
        return Ok(None);
    };
    if header.len() < 52 || &header[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let elf = Elf {
        read,
        is_64: header[4] == 2,
        little_endian: header[5] != 2,
    };
    let Some((offset, size)) = elf.find_section(&header, SECTION) else {
        return Ok(None);
    };
    if size > MAX_SECTION_BYTES {
        return Err(format!(
            "{SECTION} section of {size} bytes is larger than {MAX_SECTION_BYTES}"
        ));
    }
    let compressed =
        read(offset, size).ok_or_else(|| format!("{SECTION} section lies outside the file"))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_SECTION_BYTES)
        .read_to_end(&mut json)
        .map_err(|error| format!("{SECTION} section does not decompress: {error}"))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|error| format!("{SECTION} section is not a dependency list: {error}"))
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    inventory: &mut Inventory,
) {
    for file in files {
        // Executables only: that is where cargo-auditable data lives.
        if file.mode & 0o111 == 0 || file.size < 64 || file.size > limits.max_binary_bytes {
            continue;
        }
        let path: &Path = &file.path;
        let read = |offset: u64, length: u64| {
            source
                .read_at(path, offset, length)
                .ok()
                .filter(|bytes| bytes.len() as u64 == length)
        };
        match audit_data(&read) {
            Ok(None) => {}
            Err(message) => warn(inventory, "cargo-auditable-malformed", &file.path, message),
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
