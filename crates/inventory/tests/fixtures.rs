//! The fixture root filesystems: sealcraft's package sets must equal what
//! syft and trivy both report (tests/data/expected-*.json).

use std::collections::BTreeSet;
use std::path::Path;

use sealcraft_inventory::{Inventory, Limits, PackageType, ViewSource, catalog};
use sealcraft_oci::image::{Image, ImageName, LayerOptions};
use sealcraft_oci::import::{ImportOptions, import};
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::view::MergedView;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Imports a fixture tarball as an image and catalogs it through the merged view.
fn catalog_fixture(name: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let options = ImportOptions {
        architecture: Some("amd64".into()),
        layer: LayerOptions::default(),
        limits: LayerLimits::default(),
    };
    import(
        &ImageName::Rootfs { path: data(name) },
        &layout,
        "fixture",
        &options,
    )
    .unwrap();
    let image = Image::load(&layout, Some("fixture"), None).unwrap();
    let view = MergedView::from_image(
        &layout,
        &image.manifest,
        &image.config,
        &LayerLimits::default(),
    )
    .unwrap();
    catalog(&ViewSource(&view), &Limits::default())
}

fn expected(name: &str) -> BTreeSet<(String, String, String)> {
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data(name)).unwrap()).unwrap();
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry[0].as_str().unwrap().to_owned(),
                entry[1].as_str().unwrap().to_owned(),
                entry[2].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn found(inventory: &Inventory) -> BTreeSet<(String, String, String)> {
    inventory
        .packages
        .iter()
        .map(|package| {
            let name = if package.kind == PackageType::Pypi {
                package.name.to_lowercase()
            } else {
                package.name.clone()
            };
            (
                package.kind.purl_type().to_owned(),
                name,
                package.version.clone(),
            )
        })
        .collect()
}

#[test]
fn current_fixture_matches_syft_and_trivy() {
    let inventory = catalog_fixture("bookworm-current.tar.gz");
    let found = found(&inventory);
    let expected = expected("expected-current.json");
    assert_eq!(
        found.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "found but not expected"
    );
    assert_eq!(
        expected.difference(&found).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "expected but not found"
    );
    let counts = inventory.counts();
    assert_eq!(
        (
            counts[&PackageType::Deb],
            counts[&PackageType::Pypi],
            counts[&PackageType::Npm],
            counts[&PackageType::Cargo]
        ),
        (130, 7, 7, 10)
    );
    let os = inventory.os.as_ref().unwrap();
    assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "12"));
    let zlib = inventory
        .packages
        .iter()
        .find(|package| package.name == "zlib1g")
        .unwrap();
    assert_eq!(
        zlib.purl,
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"
    );
    assert!(
        zlib.files.iter().any(|file| file.contains("libz.so")),
        "{:?}",
        zlib.files
    );
    assert_eq!(zlib.licenses, vec!["Zlib".to_owned()]);
    let ssh = inventory
        .packages
        .iter()
        .find(|package| package.name == "libssh2-1")
        .unwrap();
    assert!(ssh.purl.contains("%2B"), "{}", ssh.purl);
    assert!(
        inventory
            .packages
            .iter()
            .any(|package| package.purl == "pkg:pypi/jinja2@3.1.2")
    );
    assert!(inventory.warnings.is_empty(), "{:#?}", inventory.warnings);
}

#[test]
fn aged_fixture_skips_removed_packages() {
    let inventory = catalog_fixture("bookworm-aged.tar.gz");
    let found = found(&inventory);
    let expected = expected("expected-aged.json");
    assert_eq!(found, expected);
    assert_eq!(inventory.counts()[&PackageType::Deb], 128);
    assert!(
        !inventory
            .packages
            .iter()
            .any(|package| package.name == "perl" || package.name == "usrmerge")
    );
}
