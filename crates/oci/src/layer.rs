//! The layer codec: reading layer tars (plain, gzip, zstd) into normalised
//! entries, and writing deterministic layers.
//!
//! Reading drives the tar crate in raw mode and handles GNU long names and
//! PAX headers here, so that every extension is size-limited before it is
//! buffered, and every path is normalised and checked (no absolute paths,
//! no `..`) before any consumer sees it. Whiteouts come out as their own
//! entry kinds rather than as files named `.wh.*`.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{EntryProblem, Error, LayerProblem, PaxProblem, Result};

mod write;
pub use write::LayerWriter;

/// Prefix of a whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link with its (unchecked) target.
    Symlink(PathBuf),
    /// A hard link to another path of the image (normalised).
    HardLink(PathBuf),
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// Hides `path` (and everything under it) in lower layers.
    Whiteout,
    /// Hides every lower-layer child of the directory `path`.
    OpaqueWhiteout,
}

impl EntryKind {
    /// Whether this is a device node.
    pub fn is_device(&self) -> bool {
        matches!(self, Self::CharDevice { .. } | Self::BlockDevice { .. })
    }
}

/// The normalised metadata of one layer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Path relative to the image root, without `./` or trailing `/`.
    pub path: PathBuf,
    /// The kind of object.
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Size of a regular file's content (0 otherwise).
    pub size: u64,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl EntryMeta {
    /// Metadata for a new entry owned by root with mtime 0.
    pub fn new(path: impl Into<PathBuf>, kind: EntryKind, mode: u32) -> Self {
        Self {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// The path as a display string.
    pub fn display_path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// Limits that protect readers from hostile layers.
#[derive(Debug, Clone)]
pub struct LayerLimits {
    /// Largest GNU long name or PAX extension header accepted.
    pub max_extension_bytes: u64,
    /// Longest path accepted.
    pub max_path_bytes: usize,
    /// Most entries accepted in one layer.
    pub max_entries: u64,
    /// Largest decompressed layer accepted.
    pub max_uncompressed_bytes: u64,
    /// Highest decompression ratio tolerated once `ratio_grace_bytes` have been produced.
    pub max_compression_ratio: u64,
    /// Decompressed bytes before the ratio is checked (small layers compress well).
    pub ratio_grace_bytes: u64,
}

impl Default for LayerLimits {
    fn default() -> Self {
        Self {
            max_extension_bytes: 1 << 20,
            max_path_bytes: 4096,
            max_entries: 10_000_000,
            max_uncompressed_bytes: 64 << 30,
            // gzip tops out near 1030:1 on all-zero input; real layers sit far below 100:1.
            max_compression_ratio: 250,
            ratio_grace_bytes: 128 << 20,
        }
    }
}

/// The compression of a layer stream, as detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Every choice, in the order they are offered.
    pub const ALL: [Self; 3] = [Self::Gzip, Self::Zstd, Self::None];

    /// The name users write (`gzip`, `zstd`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }

    /// The compression a name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|choice| choice.name() == name)
    }

    /// The OCI layer media type for this compression.
    pub fn layer_media_type(self) -> &'static str {
        use crate::manifest::media_type;
        match self {
            Self::None => media_type::OCI_LAYER_TAR,
            Self::Gzip => media_type::OCI_LAYER_GZIP,
            Self::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.count.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }
}

/// Enforces the size and ratio limits on a decompressed stream.
struct GuardedReader<R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    produced: u64,
    layer: String,
    limits: LayerLimits,
    compressed_stream: bool,
}

impl<R: Read> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.produced += count as u64;
        let problem = if self.produced > self.limits.max_uncompressed_bytes {
            Some(LayerProblem::TooLarge {
                limit: self.limits.max_uncompressed_bytes,
            })
        } else if self.compressed_stream && self.produced > self.limits.ratio_grace_bytes {
            let compressed = self.compressed.load(Ordering::Relaxed).max(1);
            (self.produced / compressed > self.limits.max_compression_ratio).then_some(
                LayerProblem::CompressionRatio {
                    limit: self.limits.max_compression_ratio,
                    uncompressed: self.produced,
                },
            )
        } else {
            None
        };
        match problem {
            Some(problem) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Error::BadLayer {
                    layer: self.layer.clone(),
                    problem,
                },
            )),
            None => Ok(count),
        }
    }
}

/// Detects the compression of `input` and returns the decompressed tar stream,
/// guarded by `limits`.
pub fn decompressed<'a, R: Read + Send + 'a>(
    input: R,
    layer: &str,
    limits: &LayerLimits,
) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let compressed = Arc::new(AtomicU64::new(0));
    let mut buffered = BufReader::with_capacity(
        256 << 10,
        CountingReader {
            inner: input,
            count: compressed.clone(),
        },
    );
    let magic = buffered
        .fill_buf()
        .map_err(|source| bad_layer(layer, LayerProblem::Read(source)))?;
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let inner: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|source| bad_layer(layer, LayerProblem::Read(source)))?,
        ),
    };
    let guarded = GuardedReader {
        inner,
        compressed,
        produced: 0,
        layer: layer.to_owned(),
        limits: limits.clone(),
        compressed_stream: compression != Compression::None,
    };
    Ok((compression, Box::new(guarded)))
}

fn bad_layer(layer: &str, problem: LayerProblem) -> Error {
    Error::BadLayer {
        layer: layer.to_owned(),
        problem,
    }
}

fn hostile(layer: &str, entry: &[u8], problem: EntryProblem) -> Error {
    Error::HostileEntry {
        layer: layer.to_owned(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        problem,
    }
}

/// Turns an I/O error from a guarded stream back into this crate's error.
fn read_error(layer: &str, source: io::Error) -> Error {
    if source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return crate::layout::io_to_error(source, "reading layer", layer);
    }
    bad_layer(layer, LayerProblem::Read(source))
}

/// Normalises an archive path: strips `./` and leading... no, refuses
/// absolute paths and `..`, drops `.` components and trailing slashes.
/// Returns `None` for the root itself.
pub fn normalize_entry_path(
    raw: &[u8],
    max_len: usize,
) -> std::result::Result<Option<PathBuf>, EntryProblem> {
    if raw.len() > max_len {
        return Err(EntryProblem::PathTooLong { limit: max_len });
    }
    if raw.first() == Some(&b'/') {
        return Err(EntryProblem::AbsolutePath);
    }
    let mut normalized: Vec<u8> = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(EntryProblem::ParentComponent),
            name => {
                if !normalized.is_empty() {
                    normalized.push(b'/');
                }
                normalized.extend_from_slice(name);
            }
        }
    }
    if normalized.is_empty() {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(std::ffi::OsString::from_vec(
        normalized,
    ))))
}

/// What `read_tar` hands to its visitor for each entry.
pub struct VisitedEntry<'a> {
    /// The normalised metadata.
    pub meta: &'a EntryMeta,
    /// Offset of the entry's content in the decompressed tar stream.
    pub data_offset: u64,
}

#[derive(Default)]
struct PendingExtensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<BTreeMap<String, Vec<u8>>>,
}

/// Reads a decompressed tar stream, calling `visit` with each normalised
/// entry and a reader for its content. Refuses hostile entries and
/// duplicate paths (apart from repeated directories).
pub fn read_tar<R: Read>(
    tar_stream: R,
    layer: &str,
    limits: &LayerLimits,
    mut visit: impl FnMut(VisitedEntry<'_>, &mut dyn Read) -> Result<()>,
) -> Result<u64> {
    let mut archive = tar::Archive::new(tar_stream);
    let entries = archive
        .entries()
        .map_err(|source| read_error(layer, source))?
        .raw(true);
    let mut pending = PendingExtensions::default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut count: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|source| read_error(layer, source))?;
        count += 1;
        if count > limits.max_entries {
            return Err(bad_layer(
                layer,
                LayerProblem::TooManyEntries {
                    limit: limits.max_entries,
                },
            ));
        }
        let header = entry.header().clone();
        let raw_path = header.path_bytes().into_owned();
        let type_byte = header.entry_type().as_byte();
        match type_byte {
            b'L' | b'K' | b'x' | b'g' => {
                let kind = match type_byte {
                    b'L' => "GNU long name",
                    b'K' => "GNU long link",
                    _ => "PAX",
                };
                let size = entry.size();
                if size > limits.max_extension_bytes {
                    return Err(hostile(
                        layer,
                        &raw_path,
                        EntryProblem::HugeExtension {
                            kind,
                            size,
                            limit: limits.max_extension_bytes,
                        },
                    ));
                }
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry
                    .read_to_end(&mut data)
                    .map_err(|source| read_error(layer, source))?;
                match type_byte {
                    b'L' => pending.long_name = Some(trim_nul(data)),
                    b'K' => pending.long_link = Some(trim_nul(data)),
                    b'x' => {
                        pending.pax = Some(parse_pax(&data).map_err(|problem| {
                            hostile(layer, &raw_path, EntryProblem::BadPax { problem })
                        })?)
                    }
                    // Global PAX headers carry archive comments in practice; they set no field we rely on.
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        let extensions = std::mem::take(&mut pending);
        let pax = extensions.pax.unwrap_or_default();
        let path_bytes = pax
            .get("path")
            .cloned()
            .or(extensions.long_name)
            .unwrap_or(raw_path);
        let link_bytes = pax
            .get("linkpath")
            .cloned()
            .or(extensions.long_link)
            .or_else(|| header.link_name_bytes().map(|bytes| bytes.into_owned()));

        let problem = |problem| hostile(layer, &path_bytes, problem);
        let numeric = |field: &'static str, value: io::Result<u64>| {
            value.map_err(|_| problem(EntryProblem::BadHeader { field }))
        };
        let pax_number = |key: &str| -> std::result::Result<Option<u64>, Error> {
            match pax.get(key) {
                None => Ok(None),
                Some(value) => {
                    let text = std::str::from_utf8(value).unwrap_or("");
                    let integer = text.split('.').next().unwrap_or("");
                    integer.parse().map(Some).map_err(|_| {
                        hostile(
                            layer,
                            &path_bytes,
                            EntryProblem::BadPax {
                                problem: PaxProblem::NotANumber {
                                    key: key.to_owned(),
                                },
                            },
                        )
                    })
                }
            }
        };

        let size = entry.size();
        if let Some(pax_size) = pax_number("size")?
            && pax_size != size
        {
            return Err(problem(EntryProblem::BadPax {
                problem: PaxProblem::SizeDisagrees,
            }));
        }
        let kind =
            match type_byte {
                b'0' | 0 | b'7' => EntryKind::File,
                b'5' => EntryKind::Directory,
                b'2' => EntryKind::Symlink(PathBuf::from(std::ffi::OsString::from_vec(
                    link_bytes.unwrap_or_default(),
                ))),
                b'1' => {
                    let target = link_bytes.unwrap_or_default();
                    match normalize_entry_path(&target, limits.max_path_bytes) {
                        Ok(Some(target)) => EntryKind::HardLink(target),
                        Ok(None) | Err(_) => {
                            return Err(problem(EntryProblem::HardLinkEscape {
                                target: String::from_utf8_lossy(&target).into_owned(),
                            }));
                        }
                    }
                }
                b'3' | b'4' => {
                    let major =
                        header.device_major().ok().flatten().ok_or_else(|| {
                            problem(EntryProblem::BadHeader { field: "devmajor" })
                        })?;
                    let minor =
                        header.device_minor().ok().flatten().ok_or_else(|| {
                            problem(EntryProblem::BadHeader { field: "devminor" })
                        })?;
                    if type_byte == b'3' {
                        EntryKind::CharDevice { major, minor }
                    } else {
                        EntryKind::BlockDevice { major, minor }
                    }
                }
                b'6' => EntryKind::Fifo,
                other => {
                    return Err(problem(EntryProblem::UnsupportedType {
                        type_byte: char::from(other),
                    }));
                }
            };
        let Some(path) =
            normalize_entry_path(&path_bytes, limits.max_path_bytes).map_err(problem)?
        else {
            // The root directory itself ("./"): its metadata belongs to whoever unpacks.
            if kind != EntryKind::Directory {
                return Err(problem(EntryProblem::WhiteoutOfRoot));
            }
            continue;
        };
        let file_name = path.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
        let (path, kind) = if file_name == OPAQUE_MARKER.as_bytes() {
            (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                EntryKind::OpaqueWhiteout,
            )
        } else if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(problem(EntryProblem::BadWhiteout));
            }
            (
                path.with_file_name(std::ffi::OsStr::from_bytes(hidden)),
                EntryKind::Whiteout,
            )
        } else {
            (path, kind)
        };

        let mtime = match pax_number("mtime")? {
            Some(value) => value,
            None => numeric("mtime", header.mtime())?,
        };
        let mut xattrs = BTreeMap::new();
        for (key, value) in &pax {
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.insert(name.to_owned(), value.clone());
            }
        }
        let meta = EntryMeta {
            path,
            mode: numeric("mode", header.mode().map(u64::from))? as u32 & 0o7777,
            uid: pax_number("uid")?.map_or_else(|| numeric("uid", header.uid()), Ok)?,
            gid: pax_number("gid")?.map_or_else(|| numeric("gid", header.gid()), Ok)?,
            mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
            size: if kind == EntryKind::File { size } else { 0 },
            kind,
            xattrs,
        };
        let repeated_directory = meta.kind == EntryKind::Directory;
        let key = match meta.kind {
            EntryKind::OpaqueWhiteout => meta.path.join(OPAQUE_MARKER),
            EntryKind::Whiteout => meta.path.with_file_name(format!(
                "{WHITEOUT_PREFIX}{}",
                meta.path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )),
            _ => meta.path.clone(),
        };
        if !seen.insert(key) && !repeated_directory {
            return Err(problem(EntryProblem::Duplicate));
        }
        let data_offset = entry.raw_file_position();
        visit(
            VisitedEntry {
                meta: &meta,
                data_offset,
            },
            &mut entry,
        )?;
        // Drain whatever the visitor did not read, so errors in the stream surface here.
        io::copy(&mut entry, &mut io::sink()).map_err(|source| read_error(layer, source))?;
    }
    Ok(count)
}

fn trim_nul(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

/// Parses PAX records: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn parse_pax(data: &[u8]) -> std::result::Result<BTreeMap<String, Vec<u8>>, PaxProblem> {
    let mut records = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(PaxProblem::NoLength)?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or(PaxProblem::LengthNotNumber)?;
        if length <= space + 1 || length > rest.len() {
            return Err(PaxProblem::LengthOutOfBounds { length });
        }
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").ok_or(PaxProblem::NoNewline)?;
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or(PaxProblem::NoEquals)?;
        let key = std::str::from_utf8(&record[..equals]).map_err(|_| PaxProblem::KeyNotUtf8)?;
        records.insert(key.to_owned(), record[equals + 1..].to_vec());
        rest = &rest[length..];
    }
    Ok(records)
}

/// Reads a whole layer blob (any compression), visiting every entry.
pub fn read_layer<R: Read + Send>(
    input: R,
    layer: &str,
    limits: &LayerLimits,
    visit: impl FnMut(VisitedEntry<'_>, &mut dyn Read) -> Result<()>,
) -> Result<Compression> {
    let (compression, stream) = decompressed(input, layer, limits)?;
    read_tar(stream, layer, limits, visit)?;
    Ok(compression)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(bytes: &[u8]) -> Result<Vec<(EntryMeta, Vec<u8>)>> {
        let mut out = Vec::new();
        read_layer(bytes, "test", &LayerLimits::default(), |entry, data| {
            let mut content = Vec::new();
            data.read_to_end(&mut content)
                .map_err(|source| bad_layer("test", LayerProblem::Read(source)))?;
            out.push((entry.meta.clone(), content));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn normalizes_paths() {
        let norm = |p: &str| normalize_entry_path(p.as_bytes(), 4096);
        assert_eq!(
            norm("./etc/passwd").unwrap(),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(norm("etc//x/./y/").unwrap(), Some(PathBuf::from("etc/x/y")));
        assert_eq!(norm("./").unwrap(), None);
        assert_eq!(norm("/etc/passwd"), Err(EntryProblem::AbsolutePath));
        assert_eq!(norm("a/../../b"), Err(EntryProblem::ParentComponent));
    }

    #[test]
    fn round_trips_every_kind_with_long_names_and_xattrs() {
        let long_name = format!("deep/{}/file", "d".repeat(150));
        let long_target = format!("/{}", "t".repeat(200));
        let mut with_xattr = EntryMeta::new("x", EntryKind::File, 0o4755);
        with_xattr
            .xattrs
            .insert("security.capability".into(), vec![1, 0, 0, 2]);
        with_xattr.size = 3;
        with_xattr.uid = 3_000_000;
        with_xattr.gid = 7;
        with_xattr.mtime = 2_000_000_000;
        let mut long = EntryMeta::new(long_name.clone(), EntryKind::File, 0o600);
        long.size = 5;
        let entries = vec![
            (EntryMeta::new("a", EntryKind::Directory, 0o755), Vec::new()),
            (EntryMeta::new("a/b", EntryKind::Whiteout, 0), Vec::new()),
            (
                EntryMeta::new("c", EntryKind::OpaqueWhiteout, 0),
                Vec::new(),
            ),
            (long, b"hello".to_vec()),
            (
                EntryMeta::new(
                    "link",
                    EntryKind::Symlink(PathBuf::from(&long_target)),
                    0o777,
                ),
                Vec::new(),
            ),
            (
                EntryMeta::new(
                    "hard",
                    EntryKind::HardLink(PathBuf::from(&long_name)),
                    0o600,
                ),
                Vec::new(),
            ),
            (
                EntryMeta::new(
                    "dev/null",
                    EntryKind::CharDevice { major: 1, minor: 3 },
                    0o666,
                ),
                Vec::new(),
            ),
            (EntryMeta::new("fifo", EntryKind::Fifo, 0o644), Vec::new()),
            (with_xattr, b"abc".to_vec()),
        ];
        let mut writer = LayerWriter::new(Vec::new(), Some(1_700_000_000));
        for (meta, data) in &entries {
            writer.append(meta, &mut data.as_slice()).unwrap();
        }
        let tar_bytes = writer.finish().unwrap();
        let read = entries_of(&tar_bytes).unwrap();
        assert_eq!(read.len(), entries.len());
        for ((expected, expected_data), (actual, actual_data)) in entries.iter().zip(&read) {
            let mut expected = expected.clone();
            expected.mtime = expected.mtime.min(1_700_000_000);
            assert_eq!(&expected, actual);
            assert_eq!(expected_data, actual_data);
        }
    }

    #[test]
    fn writer_is_deterministic_and_clamps() {
        let write = |clamp| {
            let mut meta = EntryMeta::new("f", EntryKind::File, 0o644);
            meta.mtime = 1_800_000_000;
            meta.size = 1;
            let mut writer = LayerWriter::new(Vec::new(), Some(clamp));
            writer.append(&meta, &mut &b"x"[..]).unwrap();
            writer.finish().unwrap()
        };
        assert_eq!(write(100), write(100));
        assert_ne!(write(100), write(200));
        assert_eq!(entries_of(&write(100)).unwrap()[0].0.mtime, 100);
    }

    proptest::proptest! {
        #[test]
        fn reader_never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = entries_of(&bytes);
        }

        #[test]
        fn pax_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_pax(&bytes);
        }
    }
}
