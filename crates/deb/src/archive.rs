//! `.deb` files: an `ar` archive holding `debian-binary` (format 2.x),
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]`, in that order.
//!
//! The control member is read whole (it is small); the data member is
//! streamed entry by entry from the file, so a package is never held in
//! memory. Paths are normalised and checked: an entry that climbs out of
//! the root or is absolute refuses the whole package.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::deb822::{self, Paragraph};
use crate::{Error, Result};

const AR_MAGIC: &[u8] = b"!<arch>\n";
/// Control members larger than this are not real ones.
const MAX_CONTROL_BYTES: u64 = 64 << 20;

/// How a member is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

impl Compression {
    fn of(name: &str, member: &str) -> Option<Self> {
        let suffix = name.strip_prefix(member)?;
        Some(match suffix {
            "" => Self::None,
            ".gz" => Self::Gzip,
            ".xz" => Self::Xz,
            ".zst" => Self::Zstd,
            _ => return None,
        })
    }

    /// A reader that decompresses `input`.
    pub fn reader<'a>(self, input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::None => Box::new(input),
            Self::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
            Self::Xz => Box::new(lzma_rust2::XzReader::new(input, true)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        })
    }
}

/// What a data entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A hard link to this earlier entry (relative to the root).
    HardLink(PathBuf),
    /// A character device, block device or fifo (rare in packages).
    Special,
}

/// One entry of `data.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// The path relative to the root (`usr/bin/curl`), normalised.
    pub path: PathBuf,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (and setuid, setgid, sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time.
    pub mtime: i64,
    /// Bytes of content (regular files).
    pub size: u64,
}

/// A `.deb` package: its control paragraph and control files, and where its data is.
#[derive(Debug)]
pub struct DebPackage {
    path: PathBuf,
    /// The `control` paragraph.
    pub control: Paragraph,
    /// The other control members by name (`md5sums`, `conffiles`,
    /// `postinst`, `triggers`, `shlibs`, …).
    pub control_files: BTreeMap<String, Vec<u8>>,
    data_offset: u64,
    data_size: u64,
    data_compression: Compression,
}

/// The `ar` members: name, data offset and size.
fn members(file: &mut File, path: &Path) -> Result<Vec<(String, u64, u64)>> {
    let bad = |reason: &'static str| Error::BadPackage {
        path: path.to_path_buf(),
        reason,
    };
    let io_error = |source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let length = file.metadata().map_err(io_error)?.len();
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(|_| bad("not an ar archive"))?;
    if magic != AR_MAGIC {
        return Err(bad("not an ar archive"));
    }
    let mut position = 8u64;
    let mut found = Vec::new();
    while position + 60 <= length {
        let mut header = [0u8; 60];
        file.seek(SeekFrom::Start(position)).map_err(io_error)?;
        file.read_exact(&mut header).map_err(io_error)?;
        if &header[58..60] != b"`\n" {
            return Err(bad("a damaged ar member header"));
        }
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| bad("an ar member size that is not a number"))?;
        let start = position + 60;
        if start.checked_add(size).is_none_or(|end| end > length) {
            return Err(bad("an ar member that runs past the end of the file"));
        }
        found.push((name, start, size));
        // Members are padded to an even offset.
        position = start + size + size % 2;
    }
    Ok(found)
}

fn normalize(raw: &Path) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => path.push(part),
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return None,
        }
    }
    Some(path)
}

impl DebPackage {
    /// Opens a `.deb`: checks its members and reads the control member.
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: &'static str| Error::BadPackage {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|source| Error::Io {
            action: "opening",
            path: path.to_path_buf(),
            source,
        })?;
        let members = members(&mut file, path)?;
        let mut members = members.into_iter();
        let Some((name, offset, size)) = members.next() else {
            return Err(bad("no debian-binary member"));
        };
        if name != "debian-binary" || size > 64 {
            return Err(bad("the first member is not debian-binary"));
        }
        let mut version = vec![0u8; usize::try_from(size).unwrap_or(0)];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut version))
            .map_err(|_| bad("debian-binary cannot be read"))?;
        if !version.starts_with(b"2.") {
            return Err(bad("not a format 2.x package"));
        }
        let mut control = None;
        let mut data = None;
        for (name, offset, size) in members {
            if control.is_none() {
                match Compression::of(&name, "control.tar") {
                    Some(compression) => control = Some((offset, size, compression)),
                    None if name.starts_with('_') => {}
                    None => return Err(bad("an unknown member before control.tar")),
                }
            } else if data.is_none() {
                match Compression::of(&name, "data.tar") {
                    Some(compression) => data = Some((offset, size, compression)),
                    None if name.starts_with('_') => {}
                    None => return Err(bad("an unknown member before data.tar")),
                }
            }
        }
        let (control_offset, control_size, control_compression) =
            control.ok_or_else(|| bad("no control.tar member"))?;
        let (data_offset, data_size, data_compression) =
            data.ok_or_else(|| bad("no data.tar member"))?;
        if control_size > MAX_CONTROL_BYTES {
            return Err(bad("an oversized control member"));
        }
        file.seek(SeekFrom::Start(control_offset))
            .map_err(|source| Error::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            })?;
        let decompressed = control_compression
            .reader((&mut file).take(control_size))
            .map_err(|source| Error::Io {
                action: "decompressing the control member of",
                path: path.to_path_buf(),
                source,
            })?;
        let mut control_files = BTreeMap::new();
        let mut archive = tar::Archive::new(decompressed.take(MAX_CONTROL_BYTES));
        let entries = archive.entries().map_err(|source| Error::Io {
            action: "reading the control member of",
            path: path.to_path_buf(),
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| Error::Io {
                action: "reading the control member of",
                path: path.to_path_buf(),
                source,
            })?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .ok()
                .and_then(|name| normalize(&name))
                .and_then(|name| name.to_str().map(str::to_owned))
                .ok_or_else(|| bad("a control member with a bad name"))?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|source| Error::Io {
                action: "reading the control member of",
                path: path.to_path_buf(),
                source,
            })?;
            control_files.insert(name, bytes);
        }
        let control_text = control_files
            .remove("control")
            .ok_or_else(|| bad("no control file"))?;
        let control = deb822::parse(&String::from_utf8_lossy(&control_text))
            .into_iter()
            .next()
            .ok_or_else(|| bad("an empty control file"))?;
        for field in ["Package", "Version", "Architecture"] {
            if control.single(field).is_none() {
                return Err(bad(
                    "a control file without Package, Version or Architecture",
                ));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            control,
            control_files,
            data_offset,
            data_size,
            data_compression,
        })
    }

    /// The package name.
    pub fn name(&self) -> &str {
        self.control.single("Package").unwrap_or_default()
    }

    /// The version.
    pub fn version(&self) -> &str {
        self.control.single("Version").unwrap_or_default()
    }

    /// The architecture (`amd64`, `all`, …).
    pub fn architecture(&self) -> &str {
        self.control.single("Architecture").unwrap_or_default()
    }

    /// Every data entry in archive order, with a reader of its content.
    pub fn data_entries(
        &self,
        mut visit: impl FnMut(DataEntry, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let path = &self.path;
        let io_error = |action: &'static str| {
            move |source| Error::Io {
                action,
                path: path.clone(),
                source,
            }
        };
        let bad = |reason: &'static str| Error::BadPackage {
            path: path.clone(),
            reason,
        };
        let mut file = File::open(path).map_err(io_error("opening"))?;
        file.seek(SeekFrom::Start(self.data_offset))
            .map_err(io_error("reading"))?;
        let decompressed = self
            .data_compression
            .reader(file.take(self.data_size))
            .map_err(io_error("decompressing the data member of"))?;
        let mut archive = tar::Archive::new(decompressed);
        for entry in archive
            .entries()
            .map_err(io_error("reading the data member of"))?
        {
            let mut entry = entry.map_err(io_error("reading the data member of"))?;
            let header = entry.header().clone();
            let raw = entry
                .path()
                .map_err(io_error("reading the data member of"))?
                .into_owned();
            let relative = normalize(&raw).ok_or_else(|| bad("a data entry outside the root"))?;
            let link = |entry: &tar::Entry<'_, _>| -> Result<PathBuf> {
                entry
                    .link_name()
                    .map_err(io_error("reading the data member of"))?
                    .map(|target| target.into_owned())
                    .ok_or_else(|| bad("a link without a target"))
            };
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Directory,
                tar::EntryType::Symlink => EntryKind::Symlink(link(&entry)?),
                tar::EntryType::Link => {
                    let target = normalize(&link(&entry)?)
                        .ok_or_else(|| bad("a hard link outside the root"))?;
                    EntryKind::HardLink(target)
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    EntryKind::Special
                }
                _ => return Err(bad("an unsupported data entry type")),
            };
            if relative.as_os_str().is_empty() && kind != EntryKind::Directory {
                return Err(bad("a data entry that names the root"));
            }
            let described = DataEntry {
                path: relative,
                size: if kind == EntryKind::File {
                    header
                        .size()
                        .map_err(io_error("reading the data member of"))?
                } else {
                    0
                },
                kind,
                mode: header
                    .mode()
                    .map_err(io_error("reading the data member of"))?
                    & 0o7777,
                uid: header
                    .uid()
                    .map_err(io_error("reading the data member of"))?,
                gid: header
                    .gid()
                    .map_err(io_error("reading the data member of"))?,
                mtime: i64::try_from(
                    header
                        .mtime()
                        .map_err(io_error("reading the data member of"))?,
                )
                .unwrap_or(i64::MAX),
            };
            visit(described, &mut entry)?;
        }
        Ok(())
    }
}
