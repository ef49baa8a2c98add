//! RPM packages: `var/lib/rpm/rpmdb.sqlite` (rpm 4.16 and later), whose
//! `Packages` table holds one header blob per installed package. The
//! header format readers are public: the package-database editor uses them.

use std::path::Path;

use crate::InventoryCode;
use crate::{
    FileSource, Inventory, Limits, Package, PackageType, SourceFile, SourcePackage, display, purl,
    read_metadata, warn,
};

/// The database, relative to the root.
pub const DATABASE: &str = "var/lib/rpm/rpmdb.sqlite";

/// Header tags (rpmtag.h numbers).
pub const TAG_NAME: u32 = 1000;
pub const TAG_VERSION: u32 = 1001;
pub const TAG_RELEASE: u32 = 1002;
pub const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The fields of one header that the catalog uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) epoch: Option<u32>,
    pub(crate) license: Option<String>,
    pub(crate) arch: Option<String>,
    pub(crate) source_rpm: Option<String>,
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// The value of one header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// A string (or an i18n string's first translation).
    Text(String),
    /// A string array.
    Texts(Vec<String>),
    /// An int32 array (one element for a scalar).
    Numbers(Vec<u32>),
}

/// More header tags: provides, requires and the file list.
pub const TAG_PROVIDENAME: u32 = 1047;
pub const TAG_REQUIRENAME: u32 = 1049;
pub const TAG_DIRINDEXES: u32 = 1116;
pub const TAG_BASENAMES: u32 = 1117;
pub const TAG_DIRNAMES: u32 = 1118;
const TYPE_STRING_ARRAY: u32 = 8;
/// No header holds more elements than this in one entry; more means damage.
const MAX_ELEMENTS: usize = 1 << 20;

/// Every string, string-array and int32 entry of a header blob: index
/// count, data length, 16-byte index entries (tag, type, offset, count),
/// then the data store.
pub fn header_entries(blob: &[u8]) -> Option<std::collections::BTreeMap<u32, HeaderValue>> {
    let entries = usize::try_from(be32(blob, 0)?).ok()?;
    let data_length = usize::try_from(be32(blob, 4)?).ok()?;
    let data_start = 8usize.checked_add(entries.checked_mul(16)?)?;
    let data = blob.get(data_start..data_start.checked_add(data_length)?)?;
    let mut values = std::collections::BTreeMap::new();
    for index in 0..entries {
        let entry = 8 + index * 16;
        let (tag, kind, offset, count) = (
            be32(blob, entry)?,
            be32(blob, entry + 4)?,
            usize::try_from(be32(blob, entry + 8)?).ok()?,
            usize::try_from(be32(blob, entry + 12)?).ok()?,
        );
        let strings = |wanted: usize| -> Option<Vec<String>> {
            if wanted > MAX_ELEMENTS {
                return None;
            }
            let mut out = Vec::with_capacity(wanted.min(4096));
            let mut rest = data.get(offset..)?;
            for _ in 0..wanted {
                let end = rest.iter().position(|&b| b == 0)?;
                out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
                rest = &rest[end + 1..];
            }
            Some(out)
        };
        let value = match kind {
            TYPE_STRING | TYPE_I18NSTRING => strings(1)
                .and_then(|mut list| list.pop())
                .map(HeaderValue::Text),
            TYPE_STRING_ARRAY => strings(count).map(HeaderValue::Texts),
            TYPE_INT32 if count <= MAX_ELEMENTS => (0..count)
                .map(|element| be32(data, offset.checked_add(element * 4)?))
                .collect::<Option<Vec<u32>>>()
                .map(HeaderValue::Numbers),
            _ => None,
        };
        if let Some(value) = value {
            values.insert(tag, value);
        }
    }
    Some(values)
}

/// Parses the catalog's fields of a header blob.
pub(crate) fn parse_header(blob: &[u8]) -> Option<Header> {
    let values = header_entries(blob)?;
    let text = |tag: u32| match values.get(&tag) {
        Some(HeaderValue::Text(text)) => Some(text.clone()),
        _ => None,
    };
    Some(Header {
        name: text(TAG_NAME),
        version: text(TAG_VERSION),
        release: text(TAG_RELEASE),
        epoch: match values.get(&TAG_EPOCH) {
            Some(HeaderValue::Numbers(numbers)) => numbers.first().copied(),
            _ => None,
        },
        license: text(TAG_LICENSE),
        arch: text(TAG_ARCH),
        source_rpm: text(TAG_SOURCERPM),
    })
}

/// `name-version-release.src.rpm` → (name, version-release).
fn parse_source_rpm(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".rpm")?;
    let stem = stem.rsplit_once('.').map_or(stem, |(stem, _arch)| stem);
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_owned(), format!("{version}-{release}")))
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    distro: Option<&str>,
    namespace: &str,
    inventory: &mut Inventory,
) {
    let Some(database) = files.iter().find(|file| file.path == Path::new(DATABASE)) else {
        return;
    };
    let Some(bytes) = read_metadata(source, database, limits, inventory) else {
        return;
    };
    // SQLite reads files, not buffers: the database goes to a private temporary file.
    let blobs = match read_blobs(&bytes) {
        Ok(blobs) => blobs,
        Err(error) => {
            warn(
                inventory,
                InventoryCode::RpmdbUnreadable,
                &database.path,
                sealcraft_findings::chain(&error),
            );
            return;
        }
    };
    for blob in blobs {
        let Some(header) = parse_header(&blob) else {
            warn(
                inventory,
                InventoryCode::RpmdbMalformedHeader,
                &database.path,
                "a package header could not be parsed; skipped",
            );
            continue;
        };
        let (Some(name), Some(version)) = (header.name, header.version) else {
            // The gpg-pubkey pseudo packages and damaged headers have no version.
            continue;
        };
        let mut full_version = match &header.release {
            Some(release) => format!("{version}-{release}"),
            None => version,
        };
        if let Some(epoch) = header.epoch {
            full_version = format!("{epoch}:{full_version}");
        }
        let source = header
            .source_rpm
            .as_deref()
            .and_then(parse_source_rpm)
            .map(|(name, version)| SourcePackage { name, version });
        let upstream = header.source_rpm.clone().unwrap_or_default();
        inventory.packages.push(Package {
            kind: PackageType::Rpm,
            purl: purl(
                PackageType::Rpm,
                Some(namespace),
                &name,
                &full_version,
                &[
                    ("arch", header.arch.clone().unwrap_or_default()),
                    ("distro", distro.unwrap_or_default().to_owned()),
                    ("upstream", upstream),
                ],
            ),
            name,
            version: full_version,
            licenses: header
                .license
                .map(|license| vec![license])
                .unwrap_or_default(),
            source,
            architecture: header.arch,
            locations: vec![display(&database.path)],
            files: Vec::new(),
            layer: database.layer,
        });
    }
}

/// Why the database's header blobs cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpmdbError {
    #[error("making a temporary copy")]
    Copy(#[source] std::io::Error),
    #[error("not an SQLite database")]
    NotSqlite(#[source] rusqlite::Error),
    #[error("no Packages table")]
    NoPackages(#[source] rusqlite::Error),
    #[error("reading Packages")]
    Read(#[source] rusqlite::Error),
}

/// Every header blob of the `Packages` table, in `hnum` order.
pub(crate) fn read_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, RpmdbError> {
    let mut file = tempfile::NamedTempFile::new().map_err(RpmdbError::Copy)?;
    std::io::Write::write_all(&mut file, bytes).map_err(RpmdbError::Copy)?;
    let connection = rusqlite::Connection::open_with_flags(
        file.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(RpmdbError::NotSqlite)?;
    let mut statement = connection
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(RpmdbError::NoPackages)?;
    let rows = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(RpmdbError::Read)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(RpmdbError::Read)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob with string and int32 entries.
    pub(crate) fn header_blob(strings: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in strings {
            index.extend(tag.to_be_bytes());
            index.extend(TYPE_STRING.to_be_bytes());
            index.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        if let Some(epoch) = epoch {
            while data.len() % 4 != 0 {
                data.push(0);
            }
            index.extend(TAG_EPOCH.to_be_bytes());
            index.extend(TYPE_INT32.to_be_bytes());
            index.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(epoch.to_be_bytes());
        }
        let entries = u32::try_from(index.len() / 16).unwrap();
        let mut blob = entries.to_be_bytes().to_vec();
        blob.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn headers_and_source_rpms_parse() {
        let blob = header_blob(
            &[
                (TAG_NAME, "openssl-libs"),
                (TAG_VERSION, "3.0.7"),
                (TAG_RELEASE, "27.el9"),
                (TAG_ARCH, "x86_64"),
                (TAG_SOURCERPM, "openssl-3.0.7-27.el9.src.rpm"),
            ],
            Some(1),
        );
        let header = parse_header(&blob).unwrap();
        assert_eq!(header.name.as_deref(), Some("openssl-libs"));
        assert_eq!(header.epoch, Some(1));
        assert_eq!(
            parse_source_rpm("openssl-3.0.7-27.el9.src.rpm"),
            Some(("openssl".into(), "3.0.7-27.el9".into()))
        );
        assert!(parse_header(&[0, 0, 0, 200, 0, 0, 0, 1]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(blob in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_header(&blob);
        }
    }
}
