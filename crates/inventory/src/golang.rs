//! Go binaries: the `.go.buildinfo` section (Go 1.18 and later) names the
//! Go version, the main module and every dependency module.

use crate::InventoryCode;
use crate::{FileSource, Inventory, Limits, Package, PackageType, SourceFile, display, purl, warn};

const SECTION: &str = ".go.buildinfo";
const MAGIC: &[u8] = b"\xff Go buildinf:";
const MAX_SECTION_BYTES: u64 = 4 << 20;

/// A module named in the build information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Module {
    pub(crate) path: String,
    pub(crate) version: String,
}

/// The Go version and modules of a build-info blob.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct BuildInfo {
    pub(crate) go_version: String,
    pub(crate) main: Option<Module>,
    pub(crate) dependencies: Vec<Module>,
}

fn varint(bytes: &[u8], position: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn string(bytes: &[u8], position: &mut usize) -> Option<String> {
    let length = usize::try_from(varint(bytes, position)?).ok()?;
    let end = position.checked_add(length)?;
    let text = String::from_utf8_lossy(bytes.get(*position..end)?).into_owned();
    *position = end;
    Some(text)
}

/// Why a build-info section cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BuildInfoError {
    #[error("no Go build-info header")]
    NoHeader,
    #[error("build information of a Go release before 1.18 (pointer format) is not read")]
    PointerFormat,
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("{SECTION} of {0} bytes is too large")]
    TooLarge(u64),
    #[error("{SECTION} lies outside the file")]
    OutsideFile,
}

/// Parses the section; `Err` for a build-info header in a form this reader does not know.
pub(crate) fn parse(section: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    if section.len() < 32 || !section.starts_with(MAGIC) {
        return Err(BuildInfoError::NoHeader);
    }
    if section[15] & 2 == 0 {
        return Err(BuildInfoError::PointerFormat);
    }
    let mut position = 32;
    let go_version =
        string(section, &mut position).ok_or(BuildInfoError::Truncated("Go version"))?;
    let mut modinfo =
        string(section, &mut position).ok_or(BuildInfoError::Truncated("module information"))?;
    // The module text is framed by 16-byte sentinels.
    if modinfo.len() >= 33
        && modinfo.is_char_boundary(16)
        && modinfo.is_char_boundary(modinfo.len() - 16)
    {
        modinfo = modinfo[16..modinfo.len() - 16].to_owned();
    }
    let mut info = BuildInfo {
        go_version,
        ..BuildInfo::default()
    };
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod", path, version, ..] => {
                info.main = Some(Module {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                })
            }
            ["dep", path, version, ..] => info.dependencies.push(Module {
                path: (*path).to_owned(),
                version: (*version).to_owned(),
            }),
            // A replacement applies to the dependency just before it.
            ["=>", path, version, ..] => {
                if let Some(last) = info.dependencies.last_mut() {
                    *last = Module {
                        path: (*path).to_owned(),
                        version: (*version).to_owned(),
                    };
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    inventory: &mut Inventory,
) {
    for file in crate::binaries::executables(files, limits) {
        let read = crate::binaries::exact_reads(source, &file.path);
        let Some((offset, size)) = sealcraft_elf::find_section(&read, SECTION) else {
            continue;
        };
        let parsed = if size > MAX_SECTION_BYTES {
            Err(BuildInfoError::TooLarge(size))
        } else {
            read(offset, size)
                .ok_or(BuildInfoError::OutsideFile)
                .and_then(|section| parse(&section))
        };
        let info = match parsed {
            Ok(info) => info,
            Err(error) => {
                warn(
                    inventory,
                    InventoryCode::GoBuildinfoMalformed,
                    &file.path,
                    error.to_string(),
                );
                continue;
            }
        };
        let mut modules: Vec<Module> = info.dependencies;
        if let Some(main) = info.main {
            modules.push(main);
        }
        modules.push(Module {
            path: "stdlib".into(),
            version: info.go_version.trim_start_matches("go").to_owned(),
        });
        for module in modules {
            let (namespace, name) = match module.path.rsplit_once('/') {
                Some((namespace, name)) => (Some(namespace.to_owned()), name.to_owned()),
                None => (None, module.path.clone()),
            };
            inventory.packages.push(Package {
                kind: PackageType::Golang,
                purl: purl(
                    PackageType::Golang,
                    namespace.as_deref(),
                    &name,
                    &module.version,
                    &[],
                ),
                name: module.path,
                version: module.version,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A build-info section as Go 1.18+ writes it.
    pub(crate) fn section(go_version: &str, modinfo: &str) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.push(8);
        bytes.push(2);
        bytes.resize(32, 0);
        let framed = format!("{}{modinfo}{}", "0".repeat(16), "1".repeat(16));
        for text in [go_version, framed.as_str()] {
            let mut length = text.len();
            loop {
                let byte = (length & 0x7f) as u8;
                length >>= 7;
                bytes.push(if length > 0 { byte | 0x80 } else { byte });
                if length == 0 {
                    break;
                }
            }
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes
    }

    #[test]
    fn modules_and_replacements_parse() {
        let info = parse(&section(
            "go1.21.5",
            "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.14.0\th1:abc\ndep\tgithub.com/old/dep\tv1.0.0\th1:x\n=>\tgithub.com/new/dep\tv1.2.0\th1:y\nbuild\tGOOS=linux\n",
        ))
        .unwrap();
        assert_eq!(info.go_version, "go1.21.5");
        assert_eq!(info.main.unwrap().path, "example.com/app");
        assert_eq!(
            info.dependencies,
            vec![
                Module {
                    path: "golang.org/x/text".into(),
                    version: "v0.14.0".into()
                },
                Module {
                    path: "github.com/new/dep".into(),
                    version: "v1.2.0".into()
                },
            ]
        );
        assert!(parse(b"garbage").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut section = MAGIC.to_vec();
            section.extend_from_slice(&bytes);
            let _ = parse(&section);
        }
    }
}
