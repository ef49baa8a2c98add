//! A merged, read-only view of an image's layer stack, built without
//! unpacking anything to disk.
//!
//! One pass over the layers (base first) applies whiteouts and records, for
//! every surviving path, its metadata and where its content sits in the
//! decompressed layer stream. Uncompressed layers are read in place;
//! compressed ones are spooled once, decompressed, into an anonymous
//! temporary file, so reading any file later is one positioned read.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::digest::Hasher;
use crate::error::{EntryProblem, Error, Result, io_error};
use crate::layer::{EntryKind, EntryMeta, LayerLimits, decompressed, read_tar};
use crate::layout::Layout;
use crate::manifest::{Descriptor, ImageConfig, Manifest, media_type};

/// Where a regular file's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentRef {
    /// Index of the layer (0 = base).
    pub layer: usize,
    /// Offset in the decompressed layer stream.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// One path of the merged filesystem.
#[derive(Debug, Clone)]
pub struct Node {
    /// Metadata as the topmost layer that touched the path left it.
    pub meta: EntryMeta,
    /// Content of regular files and hard links.
    pub content: Option<ContentRef>,
    /// The layer that last wrote this path.
    pub layer: usize,
}

/// The merged filesystem of a layer stack.
pub struct MergedView {
    nodes: BTreeMap<PathBuf, Node>,
    spools: Vec<File>,
    layer_names: Vec<String>,
}

const MAX_SYMLINK_HOPS: usize = 40;

impl MergedView {
    /// Builds the view of `manifest`'s layers, verifying each blob's digest
    /// and each layer's diff ID against `config`.
    pub fn from_image(
        layout: &Layout,
        manifest: &Manifest,
        config: &ImageConfig,
        limits: &LayerLimits,
    ) -> Result<Self> {
        let diff_ids = config.diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::LayerCountMismatch {
                digest: manifest.config.digest.to_string(),
                diff_ids: diff_ids.len(),
                layers: manifest.layers.len(),
            });
        }
        let mut view = Self::empty();
        for (layer_index, descriptor) in manifest.layers.iter().enumerate() {
            view.add_layer(layout, descriptor, Some(&diff_ids[layer_index]), limits)?;
        }
        Ok(view)
    }

    /// An empty filesystem.
    pub fn empty() -> Self {
        Self {
            nodes: BTreeMap::new(),
            spools: Vec::new(),
            layer_names: Vec::new(),
        }
    }

    /// Applies one more layer from the layout on top.
    pub fn add_layer(
        &mut self,
        layout: &Layout,
        descriptor: &Descriptor,
        expected_diff_id: Option<&str>,
        limits: &LayerLimits,
    ) -> Result<()> {
        let reader = layout.open_blob(descriptor)?;
        let in_place = if matches!(
            descriptor.media_type.as_str(),
            media_type::OCI_LAYER_TAR | media_type::DOCKER_LAYER_TAR
        ) {
            let path = layout.blob_path(&descriptor.digest);
            Some(File::open(&path).map_err(io_error("opening", path))?)
        } else {
            None
        };
        self.add_layer_stream(
            reader,
            descriptor.digest.as_ref(),
            in_place,
            expected_diff_id,
            limits,
        )
    }

    /// Applies one more layer on top, read from `reader` (any compression).
    /// When `in_place` is given it must hold the same bytes as the
    /// decompressed stream (an uncompressed tar), and file contents are read
    /// from it; otherwise the stream is spooled to a temporary file.
    pub fn add_layer_stream(
        &mut self,
        reader: impl Read + Send,
        layer_name: &str,
        in_place: Option<File>,
        expected_diff_id: Option<&str>,
        limits: &LayerLimits,
    ) -> Result<()> {
        let spool = match in_place {
            Some(_) => None,
            None => Some(
                tempfile::tempfile()
                    .map_err(io_error("creating a layer spool in", std::env::temp_dir()))?,
            ),
        };
        let (compression, stream) = decompressed(reader, layer_name, limits)?;
        if in_place.is_some() && compression != crate::layer::Compression::None {
            return Err(Error::UnsupportedMediaType {
                what: "an uncompressed layer",
                media_type: format!("{compression:?} data"),
            });
        }
        // Decompressing runs on a worker thread a few chunks ahead, so it
        // overlaps the hashing, spooling and tar parsing done here.
        let diff_id = with_read_ahead(stream, |stream| -> Result<crate::digest::Digest> {
            let mut tee = TeeReader {
                inner: stream,
                hasher: Hasher::sha256(),
                spool: spool
                    .as_ref()
                    .map(|file| io::BufWriter::with_capacity(1 << 20, file)),
            };
            let layer_index = self.spools.len();
            let mut added: HashSet<PathBuf> = HashSet::new();
            read_tar(&mut tee, layer_name, limits, |entry, _data| {
                self.apply(
                    layer_index,
                    layer_name,
                    entry.meta,
                    entry.data_offset,
                    &mut added,
                )
            })?;
            // Consume the end-of-archive padding so the diff ID covers the whole stream.
            io::copy(&mut tee, &mut io::sink()).map_err(|source| {
                crate::layout::io_to_error(source, "reading layer", layer_name)
            })?;
            let TeeReader {
                inner: _,
                hasher,
                spool: spool_writer,
            } = tee;
            if let Some(mut writer) = spool_writer {
                writer
                    .flush()
                    .map_err(io_error("writing a layer spool in", std::env::temp_dir()))?;
            }
            Ok(hasher.finish())
        })?;
        if let Some(expected) = expected_diff_id
            && expected != diff_id.as_ref()
        {
            return Err(Error::DiffIdMismatch {
                layer: layer_name.to_owned(),
                expected: expected.to_owned(),
                actual: diff_id.to_string(),
            });
        }
        let spool = match (spool, in_place) {
            (Some(file), _) | (None, Some(file)) => file,
            (None, None) => unreachable!("either spooled or read in place"),
        };
        self.spools.push(spool);
        self.layer_names.push(layer_name.to_owned());
        Ok(())
    }

    fn apply(
        &mut self,
        layer: usize,
        layer_name: &str,
        meta: &EntryMeta,
        offset: u64,
        added: &mut HashSet<PathBuf>,
    ) -> Result<()> {
        match &meta.kind {
            EntryKind::Whiteout => {
                self.remove_subtree(&meta.path, true, added);
                return Ok(());
            }
            EntryKind::OpaqueWhiteout => {
                self.remove_subtree(&meta.path, false, added);
                if !self.nodes.contains_key(&meta.path) {
                    self.ensure_parents(&meta.path.join("x"), layer, added);
                }
                return Ok(());
            }
            _ => {}
        }
        self.ensure_parents(&meta.path, layer, added);
        let content = match &meta.kind {
            EntryKind::File => Some(ContentRef {
                layer,
                offset,
                size: meta.size,
            }),
            EntryKind::HardLink(target) => {
                let target_node = self.nodes.get(target);
                match target_node {
                    Some(node) if node.meta.kind == EntryKind::Directory => {
                        return Err(hostile(
                            layer_name,
                            meta,
                            EntryProblem::HardLinkToDirectory {
                                target: target.to_string_lossy().into_owned(),
                            },
                        ));
                    }
                    Some(node) => node.content,
                    None => {
                        return Err(hostile(
                            layer_name,
                            meta,
                            EntryProblem::HardLinkEscape {
                                target: target.to_string_lossy().into_owned(),
                            },
                        ));
                    }
                }
            }
            _ => None,
        };
        let existing_is_dir = self
            .nodes
            .get(&meta.path)
            .is_some_and(|node| node.meta.kind == EntryKind::Directory);
        if !(existing_is_dir && meta.kind == EntryKind::Directory) {
            self.remove_subtree(&meta.path, true, added);
        }
        self.nodes.insert(
            meta.path.clone(),
            Node {
                meta: meta.clone(),
                content,
                layer,
            },
        );
        added.insert(meta.path.clone());
        Ok(())
    }

    /// Creates missing parent directories the way a runtime unpacking the layer would.
    fn ensure_parents(&mut self, path: &Path, layer: usize, added: &mut HashSet<PathBuf>) {
        let mut parents: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        parents.reverse();
        for parent in parents {
            let is_dir = self
                .nodes
                .get(parent)
                .map(|node| node.meta.kind == EntryKind::Directory);
            if is_dir != Some(true) {
                if is_dir == Some(false) {
                    self.remove_subtree(parent, true, added);
                }
                self.nodes.insert(
                    parent.to_path_buf(),
                    Node {
                        meta: EntryMeta::new(parent, EntryKind::Directory, 0o755),
                        content: None,
                        layer,
                    },
                );
                added.insert(parent.to_path_buf());
            }
        }
    }

    /// Removes `path`'s descendants (and `path` itself when `include_self`)
    /// that this layer did not add.
    fn remove_subtree(&mut self, path: &Path, include_self: bool, added: &HashSet<PathBuf>) {
        let doomed: Vec<PathBuf> = self
            .nodes
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(path))
            .filter(|(key, _)| {
                (include_self || key.as_path() != path) && !added.contains(key.as_path())
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    /// Every path with its node, in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Node)> {
        self.nodes.iter().map(|(path, node)| (path.as_path(), node))
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the filesystem is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of layers applied.
    pub fn layer_count(&self) -> usize {
        self.spools.len()
    }

    /// The node at `path`, without following symlinks.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<&Node> {
        self.nodes.get(&relative(path.as_ref())?)
    }

    /// Every path below `directory` (not the directory itself), in path order.
    pub fn under<'a>(
        &'a self,
        directory: &'a Path,
    ) -> impl Iterator<Item = (&'a Path, &'a Node)> + 'a {
        self.nodes
            .range(directory.to_path_buf()..)
            .skip_while(move |(path, _)| path.as_path() == directory)
            .take_while(move |(path, _)| path.starts_with(directory))
            .map(|(path, node)| (path.as_path(), node))
    }

    /// Resolves `path` inside the image root, following symlinks in every
    /// component (absolute targets restart at the image root; `..` stops at it).
    pub fn resolve(&self, path: impl AsRef<Path>) -> Option<(PathBuf, &Node)> {
        self.resolve_visible(path, |_| true)
    }

    /// Like [`Self::resolve`], as if every path `visible` rejects were gone:
    /// a lookup that would pass through one finds nothing.
    pub fn resolve_visible(
        &self,
        path: impl AsRef<Path>,
        visible: impl Fn(&Path) -> bool,
    ) -> Option<(PathBuf, &Node)> {
        let mut pending: Vec<PathBuf> = path
            .as_ref()
            .components()
            .rev()
            .filter_map(component_name)
            .collect();
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name.as_os_str() == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&name);
            let node = self.nodes.get(&candidate)?;
            if !visible(&candidate) {
                return None;
            }
            if let EntryKind::Symlink(target) = &node.meta.kind {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(target.components().rev().filter_map(component_name));
            } else {
                resolved = candidate;
            }
        }
        if resolved.as_os_str().is_empty() {
            return None;
        }
        let node = self.nodes.get(&resolved)?;
        Some((resolved, node))
    }

    /// The content of the regular file at `path` (symlinks followed).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let display = path.as_ref().to_string_lossy().into_owned();
        let (_, node) = self
            .resolve(path.as_ref())
            .ok_or_else(|| Error::FileNotFound {
                path: display.clone(),
            })?;
        self.read_node(node)
            .ok_or(Error::FileNotFound {
                path: display.clone(),
            })?
            .map_err(io_error("reading from the layer spool for", display))
    }

    /// The content of a node that is a regular file or hard link.
    pub fn read_node(&self, node: &Node) -> Option<io::Result<Vec<u8>>> {
        let content = node.content?;
        Some(self.read_content(content))
    }

    /// Reads the bytes a [`ContentRef`] points at.
    pub fn read_content(&self, content: ContentRef) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; usize::try_from(content.size).map_err(io::Error::other)?];
        self.spools[content.layer].read_exact_at(&mut bytes, content.offset)?;
        Ok(bytes)
    }

    /// A reader over the bytes a [`ContentRef`] points at.
    pub fn open_content(&self, content: ContentRef) -> ContentReader<'_> {
        ContentReader {
            file: &self.spools[content.layer],
            position: content.offset,
            remaining: content.size,
        }
    }
}

fn component_name(component: Component<'_>) -> Option<PathBuf> {
    match component {
        Component::Normal(name) => Some(PathBuf::from(name)),
        Component::ParentDir => Some(PathBuf::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    }
}

fn relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn hostile(layer: &str, meta: &EntryMeta, problem: EntryProblem) -> Error {
    Error::HostileEntry {
        layer: layer.to_owned(),
        entry: meta.display_path(),
        problem,
    }
}

/// Reads a byte range of a file with positioned reads (a file's bytes in a
/// layer spool, a member of an archive).
pub struct ContentReader<'a> {
    file: &'a File,
    position: u64,
    remaining: u64,
}

impl<'a> ContentReader<'a> {
    /// Reads `length` bytes of `file` starting at `offset`.
    pub fn new(file: &'a File, offset: u64, length: u64) -> Self {
        Self {
            file,
            position: offset,
            remaining: length,
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let count = self.file.read_at(&mut buf[..want], self.position)?;
        if count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer spool ended early",
            ));
        }
        self.position += count as u64;
        self.remaining -= count as u64;
        Ok(count)
    }
}

/// Chunks the worker thread reads ahead.
const READ_AHEAD_CHUNKS: usize = 4;
/// Bytes per chunk.
const READ_AHEAD_CHUNK: usize = 256 << 10;

/// Runs `body` with a reader of `inner` whose reading happens on a scoped
/// worker thread: errors arrive in order, and when `body` stops early the
/// worker stops at its next chunk.
fn with_read_ahead<T>(
    inner: Box<dyn Read + Send + '_>,
    body: impl FnOnce(&mut ReadAhead) -> T,
) -> T {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(READ_AHEAD_CHUNKS);
        scope.spawn(move || {
            let mut inner = inner;
            loop {
                let mut chunk = vec![0; READ_AHEAD_CHUNK];
                let mut filled = 0;
                let outcome = loop {
                    match inner.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(read) => {
                            filled += read;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => break Err(error),
                    }
                };
                chunk.truncate(filled);
                let last = filled == 0 || outcome.is_err();
                let message = match outcome {
                    Ok(()) => Ok(chunk),
                    Err(error) if filled == 0 => Err(error),
                    // The bytes before the error first, then the error.
                    Err(error) => {
                        if sender.send(Ok(chunk)).is_err() {
                            return;
                        }
                        Err(error)
                    }
                };
                if sender.send(message).is_err() || last {
                    return;
                }
            }
        });
        let mut reader = ReadAhead {
            receiver,
            chunk: Vec::new(),
            position: 0,
            finished: false,
        };
        body(&mut reader)
    })
}

/// The reading end of [`with_read_ahead`].
struct ReadAhead {
    receiver: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    position: usize,
    finished: bool,
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.chunk.len() {
            if self.finished {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.finished = true,
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.position = 0;
                }
                Ok(Err(error)) => {
                    self.finished = true;
                    return Err(error);
                }
                // The worker ended without the end marker: it panicked.
                Err(_) => {
                    self.finished = true;
                    return Err(io::Error::other("the decompressing thread stopped"));
                }
            }
        }
        let available = &self.chunk[self.position..];
        let taken = available.len().min(buf.len());
        buf[..taken].copy_from_slice(&available[..taken]);
        self.position += taken;
        Ok(taken)
    }
}

struct TeeReader<'a, R> {
    inner: R,
    hasher: Hasher,
    spool: Option<io::BufWriter<&'a File>>,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.hasher.update(&buf[..count]);
        if let Some(spool) = self.spool.as_mut() {
            spool.write_all(&buf[..count])?;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` in small reads, then fails.
    struct Failing {
        data: Vec<u8>,
        position: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.position == self.data.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "broken layer"));
            }
            let taken = (self.data.len() - self.position).min(buf.len()).min(1000);
            buf[..taken].copy_from_slice(&self.data[self.position..self.position + taken]);
            self.position += taken;
            Ok(taken)
        }
    }

    #[test]
    fn read_ahead_hands_over_every_byte_then_the_error() {
        let data: Vec<u8> = (0..READ_AHEAD_CHUNK * 3 + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let whole = with_read_ahead(Box::new(io::Cursor::new(data.clone())), |reader| {
            let mut read = Vec::new();
            reader.read_to_end(&mut read).map(|_| read)
        });
        assert_eq!(whole.unwrap(), data);
        let failing = Failing {
            data: data.clone(),
            position: 0,
        };
        let (read, error) = with_read_ahead(Box::new(failing), |reader| {
            let mut read = Vec::new();
            let error = reader.read_to_end(&mut read).unwrap_err();
            (read, error)
        });
        assert_eq!(read, data, "the bytes before the error arrive first");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // A reader that stops early does not wait for the rest.
        let endless = io::repeat(7);
        let first = with_read_ahead(Box::new(endless), |reader| {
            let mut buffer = [0u8; 10];
            reader.read_exact(&mut buffer).map(|()| buffer)
        });
        assert_eq!(first.unwrap(), [7; 10]);
    }
}
