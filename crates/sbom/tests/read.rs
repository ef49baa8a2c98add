//! Reading SBOMs back: sealcraft's own and those syft and trivy wrote give
//! the same package set.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use sealcraft_inventory::{Inventory, PackageType};

fn data(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display()));
    if path.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        return out;
    }
    bytes
}

fn expected() -> BTreeSet<(String, String, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/tests/data/expected-current.json");
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
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

fn set(inventory: &Inventory) -> BTreeSet<(String, String, String)> {
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
fn peer_sboms_read_back_to_the_expected_packages() {
    let expected = expected();
    for file in [
        "syft-1.18.1.dir.cdx.json",
        "trivy-0.59.1.rootfs.cdx.json",
        "trivy-0.59.1.rootfs.spdx.json.gz",
    ] {
        let inventory = sealcraft_sbom::read(&data(file)).unwrap();
        let found = set(&inventory);
        assert_eq!(
            found.symmetric_difference(&expected).collect::<Vec<_>>(),
            Vec::<&(String, String, String)>::new(),
            "{file}"
        );
        let os = inventory.os.unwrap_or_else(|| panic!("{file}: no OS"));
        assert_eq!(os.id, "debian", "{file}");
        assert_eq!(os.version_id, "12", "{file}");
        // Source packages survive the round trip (syft: upstream=, trivy: none in the purl).
        if file.starts_with("syft") {
            let zlib = inventory
                .packages
                .iter()
                .find(|package| package.name == "zlib1g")
                .unwrap();
            assert_eq!(zlib.source.as_ref().unwrap().name, "zlib");
        }
    }
}

#[test]
fn malformed_documents_are_clear_errors() {
    assert!(matches!(
        sealcraft_sbom::read(b"not json"),
        Err(sealcraft_sbom::Error::NotJson(_))
    ));
    assert!(matches!(
        sealcraft_sbom::read(b"{\"hello\": 1}"),
        Err(sealcraft_sbom::Error::UnknownFormat)
    ));
    let inventory = sealcraft_sbom::read(br#"{"bomFormat":"CycloneDX","components":[{"purl":"garbage"},{"purl":"pkg:maven/a/b@1"}]}"#).unwrap();
    assert!(inventory.packages.is_empty());
    assert_eq!(inventory.warnings.len(), 1);
}
