//! Unpacking arbitrary layers must never write outside the target directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::unpack::{UnpackOptions, unpack_layer};

fuzz_target!(|data: &[u8]| {
    let Ok(root) = tempfile_dir() else { return };
    let target = root.join("target");
    let _ = std::fs::create_dir_all(&target);
    let options = UnpackOptions {
        limits: LayerLimits { max_uncompressed_bytes: 16 << 20, ..LayerLimits::default() },
        ..UnpackOptions::default()
    };
    let _ = unpack_layer(data, "fuzz", &target, &options);
    let outside: Vec<_> = std::fs::read_dir(&root).map(|entries| entries.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert_eq!(outside, vec![std::ffi::OsString::from("target")], "an entry escaped the target");
    let _ = std::fs::remove_dir_all(&root);
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sealcraft-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
