//! Arbitrary bytes as a dpkg status database, a Python METADATA file, an
//! npm package.json and an ELF binary: cataloging must finish without a
//! panic whatever they contain.
#![no_main]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use sealcraft_inventory::{FileSource, Limits, SourceFile, catalog};

struct Memory(Vec<(PathBuf, Vec<u8>, u32)>);

impl FileSource for Memory {
    fn files(&self) -> Vec<SourceFile> {
        self.0.iter().map(|(path, bytes, mode)| SourceFile { path: path.clone(), size: bytes.len() as u64, mode: *mode, layer: None }).collect()
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let (_, bytes, _) = self.0.iter().find(|(candidate, _, _)| candidate == path).ok_or(io::ErrorKind::NotFound)?;
        Ok(bytes[..bytes.len().min(limit as usize)].to_vec())
    }

    fn read_at(&self, path: &Path, offset: u64, length: u64) -> io::Result<Vec<u8>> {
        let bytes = self.read(path, u64::MAX)?;
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(length as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let source = Memory(vec![
        (PathBuf::from("var/lib/dpkg/status"), data.to_vec(), 0o644),
        (PathBuf::from("usr/lib/python3/dist-packages/x-1.dist-info/METADATA"), data.to_vec(), 0o644),
        (PathBuf::from("app/node_modules/x/package.json"), data.to_vec(), 0o644),
        (PathBuf::from("usr/bin/tool"), data.to_vec(), 0o755),
    ]);
    let _ = catalog(&source, &Limits::default());
});
