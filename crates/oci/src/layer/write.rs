//! Writing layers: deterministic tar streams with PAX extensions where
//! ustar cannot hold a name, an id or an xattr.

use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::{EntryKind, EntryMeta, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Writes a deterministic layer tar: the caller supplies entries in the
/// order they should appear (sealcraft always sorts by path); mtimes are
/// clamped to `clamp_mtime`, atime and ctime are never written, user and
/// group names are left empty (ids are what counts), and PAX headers carry
/// long names, large ids and extended attributes.
pub struct LayerWriter<W: Write> {
    builder: tar::Builder<W>,
    clamp_mtime: Option<i64>,
}

const USTAR_NAME_LENGTH: usize = 100;
const USTAR_MAX_ID: u64 = 0o7_777_777;

impl<W: Write> LayerWriter<W> {
    /// A writer over `output`, clamping mtimes to `clamp_mtime` when given.
    pub fn new(output: W, clamp_mtime: Option<i64>) -> Self {
        Self {
            builder: tar::Builder::new(output),
            clamp_mtime,
        }
    }

    /// Appends one entry; `data` is read for regular files only.
    pub fn append(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> io::Result<()> {
        let mut path = meta.path.as_os_str().as_bytes().to_vec();
        let mut header = tar::Header::new_ustar();
        let mut size = 0;
        let mut link: Option<Vec<u8>> = None;
        match &meta.kind {
            EntryKind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                size = meta.size;
            }
            EntryKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                path.push(b'/');
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                link = Some(target.as_os_str().as_bytes().to_vec());
            }
            EntryKind::HardLink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                link = Some(target.as_os_str().as_bytes().to_vec());
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                header.set_entry_type(if matches!(meta.kind, EntryKind::CharDevice { .. }) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                header.set_device_major(*major)?;
                header.set_device_minor(*minor)?;
            }
            EntryKind::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            EntryKind::Whiteout => {
                header.set_entry_type(tar::EntryType::Regular);
                let name = meta
                    .path
                    .file_name()
                    .map(OsStrExt::as_bytes)
                    .unwrap_or_default();
                let mut whiteout = WHITEOUT_PREFIX.as_bytes().to_vec();
                whiteout.extend_from_slice(name);
                path = meta
                    .path
                    .with_file_name(std::ffi::OsStr::from_bytes(&whiteout))
                    .into_os_string()
                    .into_vec();
            }
            EntryKind::OpaqueWhiteout => {
                header.set_entry_type(tar::EntryType::Regular);
                path = meta.path.join(OPAQUE_MARKER).into_os_string().into_vec();
            }
        }
        let is_whiteout = matches!(meta.kind, EntryKind::Whiteout | EntryKind::OpaqueWhiteout);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if path.len() > USTAR_NAME_LENGTH || !path.is_ascii() {
            pax.push(("path".into(), path.clone()));
        }
        if let Some(link) = &link
            && (link.len() > USTAR_NAME_LENGTH || !link.is_ascii())
        {
            pax.push(("linkpath".into(), link.clone()));
        }
        let (uid, gid) = if is_whiteout {
            (0, 0)
        } else {
            (meta.uid, meta.gid)
        };
        if uid > USTAR_MAX_ID {
            pax.push(("uid".into(), uid.to_string().into_bytes()));
        }
        if gid > USTAR_MAX_ID {
            pax.push(("gid".into(), gid.to_string().into_bytes()));
        }
        if !is_whiteout {
            for (name, value) in &meta.xattrs {
                pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
            }
        }
        if !pax.is_empty() {
            self.append_pax(&path, &pax)?;
        }
        set_name_field(&mut header.as_old_mut().name, &path);
        if let Some(link) = &link {
            set_name_field(&mut header.as_old_mut().linkname, link);
        }
        header.set_mode(if is_whiteout { 0 } else { meta.mode & 0o7777 });
        header.set_uid(uid.min(USTAR_MAX_ID));
        header.set_gid(gid.min(USTAR_MAX_ID));
        let mtime = if is_whiteout { 0 } else { meta.mtime.max(0) };
        let mtime = self
            .clamp_mtime
            .map_or(mtime, |clamp| mtime.min(clamp.max(0)));
        header.set_mtime(u64::try_from(mtime).unwrap_or(0));
        header.set_size(size);
        header.set_cksum();
        if size > 0 {
            let mut limited = data.take(size);
            self.builder.append(&header, &mut limited)?;
            if limited.limit() != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("content of {} ended early", meta.display_path()),
                ));
            }
            Ok(())
        } else {
            self.builder.append(&header, io::empty())
        }
    }

    fn append_pax(&mut self, path: &[u8], records: &[(String, Vec<u8>)]) -> io::Result<()> {
        let mut body = Vec::new();
        for (key, value) in records {
            // The length prefix counts its own digits, so find the fixed point.
            let rest = key.len() + value.len() + 3; // space, '=', newline
            let mut length = rest + 1;
            while length != rest + length.to_string().len() {
                length = rest + length.to_string().len();
            }
            body.extend_from_slice(length.to_string().as_bytes());
            body.push(b' ');
            body.extend_from_slice(key.as_bytes());
            body.push(b'=');
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        let mut name = b"PaxHeaders/".to_vec();
        let base = path
            .rsplit(|&b| b == b'/')
            .find(|part| !part.is_empty())
            .unwrap_or(b"entry");
        name.extend(
            base.iter()
                .copied()
                .filter(u8::is_ascii)
                .take(USTAR_NAME_LENGTH - name.len()),
        );
        set_name_field(&mut header.as_old_mut().name, &name);
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        self.builder.append(&header, body.as_slice())
    }

    /// Writes the end-of-archive marker and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// Fills a fixed-size name field; names that do not fit were put in PAX
/// records, so the truncated copy here only serves readers without PAX.
fn set_name_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let length = value.len().min(field.len());
    field[..length].copy_from_slice(&value[..length]);
}
