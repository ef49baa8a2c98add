//! A corpus of hostile layers: each must be refused with an error naming
//! the entry and the layer, and nothing may be written outside the target.

use std::fs;
use std::io::Write;
use std::path::Path;

use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::unpack::{UnpackOptions, unpack_layer};

/// One raw ustar header block, built by hand so that hostile values the
/// tar crate's writer would refuse can be expressed.
fn header(name: &[u8], type_flag: u8, size: usize, link: &[u8]) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    block[100..108].copy_from_slice(b"0000755\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = type_flag;
    block[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[329..337].copy_from_slice(b"0000001\0");
    block[337..345].copy_from_slice(b"0000003\0");
    block[148..156].copy_from_slice(b"        ");
    let checksum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    block
}

#[derive(Default)]
struct TarBuilder {
    bytes: Vec<u8>,
}

impl TarBuilder {
    fn entry(mut self, name: &str, type_flag: u8, data: &[u8], link: &str) -> Self {
        self.bytes.extend_from_slice(&header(
            name.as_bytes(),
            type_flag,
            data.len(),
            link.as_bytes(),
        ));
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, b'0', data, "")
    }
    fn dir(self, name: &str) -> Self {
        self.entry(name, b'5', b"", "")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'2', b"", target)
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'1', b"", target)
    }
    fn pax(self, records: &[(&str, &str)]) -> Self {
        let mut body = String::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3;
            let mut length = rest + 1;
            while length != rest + length.to_string().len() {
                length = rest + length.to_string().len();
            }
            body.push_str(&format!("{length} {key}={value}\n"));
        }
        self.entry("PaxHeaders/x", b'x', body.as_bytes(), "")
    }
    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

struct Sandbox {
    _root: tempfile::TempDir,
    target: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A target directory next to an "outside" directory holding a secret file.
fn sandbox() -> Sandbox {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("target");
    let outside = root.path().join("outside");
    fs::create_dir_all(&target).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep me").unwrap();
    Sandbox {
        target,
        outside,
        _root: root,
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let content = fs::read(entry.path()).unwrap_or_default();
        out.push((entry.file_name().to_string_lossy().into_owned(), content));
    }
    out.sort();
    out
}

/// Unpacks `layer`, expects an error mentioning `entry`, and checks the outside is untouched.
fn assert_refused(case: &str, layer: &[u8], entry: &str, options: &UnpackOptions) {
    let sandbox = sandbox();
    let before = snapshot(&sandbox.outside);
    let layer_name = format!("layer-{case}");
    let result = unpack_layer(layer, &layer_name, &sandbox.target, options);
    let error = match result {
        Ok(stats) => panic!("{case}: hostile layer was accepted ({stats:?})"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains(&layer_name),
        "{case}: error does not name the layer: {error}"
    );
    assert!(
        error.contains(entry),
        "{case}: error does not name the entry {entry:?}: {error}"
    );
    assert_eq!(
        snapshot(&sandbox.outside),
        before,
        "{case}: something changed outside the target"
    );
    let parent = sandbox.target.parent().unwrap();
    let mut siblings: Vec<String> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    siblings.sort();
    assert_eq!(
        siblings,
        vec!["outside", "target"],
        "{case}: wrote next to the target"
    );
}

fn outside_link(sandbox_hint: &str) -> String {
    // Relative path from target/<entry> to the sibling "outside" directory.
    format!("{sandbox_hint}../outside")
}

#[test]
fn hostile_corpus_is_refused() {
    let options = UnpackOptions::default();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            TarBuilder::default().file("../evil", b"x").finish(),
            "../evil",
        ),
        (
            "nested-dotdot",
            TarBuilder::default().file("a/../../evil", b"x").finish(),
            "a/../../evil",
        ),
        (
            "absolute",
            TarBuilder::default()
                .file("/tmp/evil-absolute", b"x")
                .finish(),
            "/tmp/evil-absolute",
        ),
        (
            "symlink-escape",
            TarBuilder::default()
                .symlink("link", &outside_link(""))
                .file("link/evil", b"x")
                .finish(),
            "link/evil",
        ),
        (
            "symlink-absolute-parent",
            TarBuilder::default()
                .symlink("link", "/tmp")
                .file("link/evil-abs", b"x")
                .finish(),
            "link/evil-abs",
        ),
        (
            "symlink-chain",
            TarBuilder::default()
                .symlink("a", "b")
                .symlink("b", "c")
                .symlink("c", &outside_link(""))
                .file("a/evil", b"x")
                .finish(),
            "a/evil",
        ),
        (
            "symlinked-deep-parent",
            TarBuilder::default()
                .dir("d")
                .symlink("d/up", &outside_link("../"))
                .file("d/up/secret", b"overwritten")
                .finish(),
            "d/up/secret",
        ),
        (
            "hardlink-dotdot",
            TarBuilder::default()
                .hardlink("h", "../outside/secret")
                .finish(),
            "h",
        ),
        (
            "hardlink-absolute",
            TarBuilder::default().hardlink("h", "/etc/passwd").finish(),
            "h",
        ),
        (
            "hardlink-through-symlink",
            TarBuilder::default()
                .symlink("s", &outside_link(""))
                .hardlink("h", "s/secret")
                .finish(),
            "h",
        ),
        (
            "hardlink-missing-target",
            TarBuilder::default().hardlink("h", "nowhere").finish(),
            "h",
        ),
        (
            "hardlink-to-directory",
            TarBuilder::default().dir("d").hardlink("h", "d").finish(),
            "h",
        ),
        (
            "whiteout-dotdot",
            TarBuilder::default().file(".wh...", b"").finish(),
            ".wh...",
        ),
        (
            "whiteout-dot",
            TarBuilder::default().file("a/.wh..", b"").finish(),
            "a/.wh..",
        ),
        (
            "whiteout-empty",
            TarBuilder::default().file("a/.wh.", b"").finish(),
            "a/.wh.",
        ),
        (
            "whiteout-parent-path",
            TarBuilder::default().file("../.wh.secret", b"").finish(),
            "../.wh.secret",
        ),
        (
            "whiteout-through-symlink",
            TarBuilder::default()
                .symlink("link", &outside_link(""))
                .file("link/.wh.secret", b"")
                .finish(),
            "link/secret",
        ),
        (
            "opaque-through-symlink",
            TarBuilder::default()
                .symlink("link", &outside_link(""))
                .file("link/.wh..wh..opq", b"")
                .finish(),
            "link",
        ),
        (
            "duplicate-file",
            TarBuilder::default()
                .file("x", b"benign")
                .file("x", b"evil")
                .finish(),
            "x",
        ),
        (
            "dir-replaced-by-symlink",
            TarBuilder::default()
                .dir("a")
                .symlink("a", &outside_link(""))
                .file("a/secret", b"overwritten")
                .finish(),
            "a",
        ),
        (
            "pax-path-dotdot",
            TarBuilder::default()
                .pax(&[("path", "../pax-evil")])
                .file("innocent", b"x")
                .finish(),
            "../pax-evil",
        ),
        (
            "pax-path-too-long",
            TarBuilder::default()
                .pax(&[("path", &"a/".repeat(2600))])
                .file("innocent", b"x")
                .finish(),
            "a/a/a/",
        ),
        (
            "pax-malformed",
            TarBuilder::default()
                .entry("PaxHeaders/x", b'x', b"99 path=x\n", "")
                .file("innocent", b"x")
                .finish(),
            "PaxHeaders/x",
        ),
        (
            "sparse-entry",
            TarBuilder::default()
                .entry("sparse", b'S', b"", "")
                .finish(),
            "sparse",
        ),
    ];
    assert!(cases.len() >= 20);
    for (case, layer, entry) in &cases {
        assert_refused(case, layer, entry, &options);
        // The same layer gzip-compressed is refused the same way.
        assert_refused(case, &gzip(layer), entry, &options);
    }
}

#[test]
fn oversized_extensions_are_refused_before_buffering() {
    let huge_name = "n".repeat(2 << 20);
    let long_name = TarBuilder::default()
        .entry("././@LongLink", b'L', huge_name.as_bytes(), "")
        .file("x", b"x")
        .finish();
    let huge_pax = TarBuilder::default()
        .pax(&[("comment", &"c".repeat(2 << 20))])
        .file("x", b"x")
        .finish();
    for (case, layer) in [("gnu-long-name", long_name), ("pax-huge", huge_pax)] {
        let sandbox = sandbox();
        let error = unpack_layer(
            layer.as_slice(),
            case,
            &sandbox.target,
            &UnpackOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("exceeds the limit"), "{case}: {error}");
    }
}

#[test]
fn broken_streams_are_refused() {
    let good = TarBuilder::default().file("a", &[7u8; 100_000]).finish();
    let compressed = gzip(&good);
    let truncated_gzip = &compressed[..compressed.len() / 2];
    let truncated_tar = &good[..good.len() - 60_000];
    let mut bad_checksum = good.clone();
    bad_checksum[0] = b'b';
    for (case, layer) in [
        ("truncated-gzip", truncated_gzip),
        ("truncated-tar", truncated_tar),
        ("bad-checksum", &bad_checksum),
    ] {
        let sandbox = sandbox();
        let error = unpack_layer(layer, case, &sandbox.target, &UnpackOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains(case), "{case}: {error}");
    }
}

#[test]
fn decompression_bombs_are_stopped() {
    let zeros = vec![0u8; 40 << 20];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&TarBuilder::default().file("zeros", &zeros).finish())
        .unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(
        bomb.len() < 1 << 20,
        "the fixture must be a real bomb ({} bytes)",
        bomb.len()
    );
    let options = UnpackOptions {
        limits: LayerLimits {
            ratio_grace_bytes: 4 << 20,
            ..LayerLimits::default()
        },
        ..UnpackOptions::default()
    };
    let sandbox = sandbox();
    let error = unpack_layer(bomb.as_slice(), "bomb", &sandbox.target, &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("decompression ratio"), "{error}");
    let size_capped = UnpackOptions {
        limits: LayerLimits {
            max_uncompressed_bytes: 8 << 20,
            ..LayerLimits::default()
        },
        ..UnpackOptions::default()
    };
    let error = unpack_layer(bomb.as_slice(), "bomb", &sandbox.target, &size_capped)
        .unwrap_err()
        .to_string();
    assert!(error.contains("exceeds 8388608 bytes"), "{error}");
}

#[test]
fn device_nodes_are_skipped_unless_asked_for() {
    let layer = TarBuilder::default()
        .dir("dev")
        .entry("dev/evil", b'3', b"", "")
        .file("ok", b"fine")
        .finish();
    let sandbox = sandbox();
    let stats = unpack_layer(
        layer.as_slice(),
        "devices",
        &sandbox.target,
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!sandbox.target.join("dev/evil").exists());
    assert_eq!(fs::read(sandbox.target.join("ok")).unwrap(), b"fine");
}

#[test]
fn benign_layers_with_whiteouts_unpack() {
    let lower = TarBuilder::default()
        .dir("d")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .dir("o")
        .file("o/x", b"x")
        .file("gone", b"g")
        .finish();
    let upper = TarBuilder::default()
        .file(".wh.gone", b"")
        .file("d/.wh.a", b"")
        .file("o/.wh..wh..opq", b"")
        .file("o/y", b"y")
        .hardlink("d/b2", "d/b")
        .finish();
    let sandbox = sandbox();
    unpack_layer(
        lower.as_slice(),
        "lower",
        &sandbox.target,
        &UnpackOptions::default(),
    )
    .unwrap();
    unpack_layer(
        upper.as_slice(),
        "upper",
        &sandbox.target,
        &UnpackOptions::default(),
    )
    .unwrap();
    let t = &sandbox.target;
    assert!(!t.join("gone").exists());
    assert!(!t.join("d/a").exists());
    assert_eq!(fs::read(t.join("d/b2")).unwrap(), b"b");
    assert!(!t.join("o/x").exists());
    assert_eq!(fs::read(t.join("o/y")).unwrap(), b"y");
}

#[test]
fn every_compression_reads_back_through_the_merged_view() {
    use sealcraft_oci::image::{LayerOptions, write_layer};
    use sealcraft_oci::layer::{Compression, EntryKind, EntryMeta};
    use sealcraft_oci::layout::Layout;
    use sealcraft_oci::view::MergedView;

    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let written = write_layer(
            &layout,
            &LayerOptions {
                compression,
                ..LayerOptions::default()
            },
            |writer| {
                writer.append(
                    &EntryMeta::new("etc", EntryKind::Directory, 0o755),
                    &mut std::io::empty(),
                )?;
                let file = EntryMeta {
                    size: 5,
                    ..EntryMeta::new("etc/os-release", EntryKind::File, 0o644)
                };
                writer.append(&file, &mut &b"ID=x\n"[..])?;
                writer.append(
                    &EntryMeta::new(
                        "os-release",
                        EntryKind::Symlink("etc/os-release".into()),
                        0o777,
                    ),
                    &mut std::io::empty(),
                )?;
                Ok(3)
            },
        )
        .unwrap();
        assert_eq!(
            written.descriptor.media_type,
            compression.layer_media_type()
        );
        let mut view = MergedView::empty();
        view.add_layer(
            &layout,
            &written.descriptor,
            Some(written.diff_id.as_ref()),
            &LayerLimits::default(),
        )
        .unwrap();
        assert_eq!(
            view.read("/os-release").unwrap(),
            b"ID=x\n",
            "{compression:?}"
        );
        assert_eq!(view.len(), 3);
    }
}
