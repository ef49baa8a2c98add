use std::path::PathBuf;

/// Everything that can go wrong in `sealcraft-oci`.
///
/// Variants carry the path, layer or digest they concern, so a message
/// always tells which input was refused and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Write(#[from] sealcraft_files::Error),

    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },

    #[error("invalid image name {name:?}: {reason}")]
    InvalidImageName { name: String, reason: String },

    #[error("invalid digest {digest:?}")]
    InvalidDigest {
        digest: String,
        #[source]
        source: oci_spec::OciSpecError,
    },

    #[error("unsupported digest algorithm {algorithm:?} (sha256 and sha512 are supported)")]
    UnsupportedDigestAlgorithm { algorithm: String },

    #[error("blob {digest} is not in the layout at {layout}")]
    BlobNotFound { layout: PathBuf, digest: String },

    #[error(
        "blob {digest} does not match its content: expected {expected_size} bytes with that digest, found {actual_size} bytes with digest {actual_digest}"
    )]
    BlobMismatch {
        digest: String,
        expected_size: u64,
        actual_size: u64,
        actual_digest: String,
    },

    #[error("{path} is not an OCI image layout: cannot read {file}")]
    NoLayoutMarker {
        path: PathBuf,
        file: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not an OCI image layout: unsupported imageLayoutVersion {version:?}")]
    UnsupportedLayoutVersion { path: PathBuf, version: String },

    #[error("no image tagged {tag:?} in {layout}")]
    TagNotFound { layout: PathBuf, tag: String },

    #[error("{layout} holds {count} images; name one with {layout_display}:TAG")]
    AmbiguousImage {
        layout: PathBuf,
        layout_display: String,
        count: usize,
    },

    #[error("malformed {what} {digest}: {source}")]
    MalformedDocument {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("malformed {what} in {path}: {source}")]
    MalformedFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        what: &'static str,
        media_type: String,
    },

    #[error("image {digest} is an index of {count} images; select a platform (--arch)")]
    IndexNeedsPlatform { digest: String, count: usize },

    #[error("image index {digest} has no image for {platform}")]
    PlatformNotFound { digest: String, platform: String },

    #[error("config {digest} lists {diff_ids} diff_ids but the manifest has {layers} layers")]
    LayerCountMismatch {
        digest: String,
        diff_ids: usize,
        layers: usize,
    },

    #[error("layer {layer}: diff_id mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },

    #[error("layer {layer}: entry {entry:?}: {problem}")]
    HostileEntry {
        layer: String,
        entry: String,
        problem: EntryProblem,
    },

    #[error("layer {layer}: {problem}")]
    BadLayer {
        layer: String,
        problem: LayerProblem,
    },

    #[error("layer {layer}: unpacking {entry:?} into {target}")]
    UnpackIo {
        layer: String,
        entry: String,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{archive}: {reason}")]
    BadArchive { archive: PathBuf, reason: String },

    #[error("{archive} is not a tar archive")]
    NotATar {
        archive: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("file {path:?} not found in the image")]
    FileNotFound { path: String },

    #[error("writing JSON for {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Why one tar entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    #[error("absolute path")]
    AbsolutePath,
    #[error("path contains a '..' component")]
    ParentComponent,
    #[error("path is longer than {limit} bytes")]
    PathTooLong { limit: usize },
    #[error("whiteout names no file (.wh. alone, or of '.' or '..')")]
    BadWhiteout,
    #[error("duplicate entry in one layer")]
    Duplicate,
    #[error("a parent directory is a symbolic link ({parent:?}): refusing to write through it")]
    SymlinkParent { parent: String },
    #[error("a parent path is not a directory ({parent:?})")]
    ParentNotDirectory { parent: String },
    #[error("hard link target {target:?} leaves the root or does not exist")]
    HardLinkEscape { target: String },
    #[error("hard link target {target:?} is a directory")]
    HardLinkToDirectory { target: String },
    #[error("unsupported tar entry type {type_byte:?}")]
    UnsupportedType { type_byte: char },
    #[error("{kind} extension header of {size} bytes exceeds the limit of {limit} bytes")]
    HugeExtension {
        kind: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("malformed PAX extended header: {problem}")]
    BadPax { problem: PaxProblem },
    #[error("malformed header field {field}")]
    BadHeader { field: &'static str },
    #[error("names the root of the image as a whiteout")]
    WhiteoutOfRoot,
}

/// What is wrong with a PAX extended header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaxProblem {
    #[error("record without a length")]
    NoLength,
    #[error("record length is not a number")]
    LengthNotNumber,
    #[error("record length {length} out of bounds")]
    LengthOutOfBounds { length: usize },
    #[error("record does not end with a newline")]
    NoNewline,
    #[error("record without '='")]
    NoEquals,
    #[error("record key is not UTF-8")]
    KeyNotUtf8,
    #[error("{key} is not a number")]
    NotANumber { key: String },
    #[error("size disagrees with the header (sparse or oversized entries are not supported)")]
    SizeDisagrees,
}

/// Why a whole layer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerProblem {
    #[error("reading the tar stream")]
    Read(#[source] std::io::Error),
    #[error("more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("decompressed size exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("decompression ratio above {limit}:1 after {uncompressed} bytes (decompression bomb?)")]
    CompressionRatio { limit: u64, uncompressed: u64 },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
