//! Any byte string fed to the layer reader (plain, gzip or zstd) must give
//! entries or an error, never a panic, a hang or unbounded memory.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sealcraft_oci::layer::{LayerLimits, read_layer};

fuzz_target!(|data: &[u8]| {
    let limits = LayerLimits { max_uncompressed_bytes: 16 << 20, ratio_grace_bytes: 1 << 20, ..LayerLimits::default() };
    let _ = read_layer(data, "fuzz", &limits, |_entry, content| {
        let mut sink = Vec::new();
        let _ = content.take(1 << 20).read_to_end(&mut sink);
        Ok(())
    });
});
