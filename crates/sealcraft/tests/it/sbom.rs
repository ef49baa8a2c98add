//! SBOMs validated by the official schemas and spdx-tools, reproducible,
//! and readable back into the same package set.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::sealcraft_ok;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python validators: `SEALCRAFT_PYTHON_TOOLS` (scripts/test installs them) or PATH.
fn python_tool(name: &str) -> String {
    match std::env::var("SEALCRAFT_PYTHON_TOOLS") {
        Ok(directory) => Path::new(&directory).join(name).display().to_string(),
        Err(_) => name.to_owned(),
    }
}

fn validate(tool: &str, args: &[&str]) {
    let program = python_tool(tool);
    let output = Command::new(&program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} is needed (scripts/test installs it): {error}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} rejected it:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sboms_validate_are_reproducible_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = workspace().join("crates/inventory/tests/data/bookworm-current.tar.gz");
    let layout = dir.path().join("layout");
    sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", tarball.display()),
        "--output",
        &format!("oci:{}:fixture", layout.display()),
        "--json",
    ]);
    let image = format!("oci:{}:fixture", layout.display());
    let name = "registry.example.com/demo/fixture:1.0-amd64";
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    let report = sealcraft_ok(&[
        "sbom",
        &image,
        "--name",
        name,
        "-o",
        &first.display().to_string(),
        "--json",
    ]);
    assert_eq!(
        report["counts"],
        serde_json::json!({"cargo": 10, "deb": 130, "npm": 7, "pypi": 7})
    );
    sealcraft_ok(&[
        "sbom",
        &image,
        "--name",
        name,
        "-o",
        &second.display().to_string(),
        "--json",
    ]);
    for file in [
        "sbom-fixture-1.0-amd64-cyclonedx.json",
        "sbom-fixture-1.0-amd64-spdx.json",
    ] {
        assert_eq!(
            std::fs::read(first.join(file)).unwrap(),
            std::fs::read(second.join(file)).unwrap(),
            "{file} differs between two runs"
        );
    }

    let schemas = workspace().join("crates/sbom/tests/schemas");
    let cyclonedx = first
        .join("sbom-fixture-1.0-amd64-cyclonedx.json")
        .display()
        .to_string();
    let spdx = first
        .join("sbom-fixture-1.0-amd64-spdx.json")
        .display()
        .to_string();
    let bom_schema = schemas.join("bom-1.6.schema.json").display().to_string();
    validate(
        "check-jsonschema",
        &[
            "--base-uri",
            &format!("file://{bom_schema}"),
            "--schemafile",
            &bom_schema,
            &cyclonedx,
        ],
    );
    validate(
        "check-jsonschema",
        &[
            "--schemafile",
            &schemas.join("spdx-2.3-schema.json").display().to_string(),
            &spdx,
        ],
    );
    validate("pyspdxtools", &["-i", &spdx]);

    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cyclonedx).unwrap()).unwrap();
    assert_eq!(document["metadata"]["component"]["name"], name);
    assert!(
        document["metadata"]["component"]["version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(document["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let from_cyclonedx = sealcraft_sbom::read(&std::fs::read(&cyclonedx).unwrap()).unwrap();
    let from_spdx = sealcraft_sbom::read(&std::fs::read(&spdx).unwrap()).unwrap();
    let keys = |inventory: &sealcraft_inventory::Inventory| {
        inventory
            .packages
            .iter()
            .map(|package| package.purl.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&from_cyclonedx), keys(&from_spdx));
    assert_eq!(keys(&from_cyclonedx).len(), 154);
}

#[test]
fn a_directory_can_be_cataloged_and_hostile_metadata_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let status = root.join("var/lib/dpkg");
    std::fs::create_dir_all(&status).unwrap();
    std::fs::write(status.join("status"), "Package: good\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\nGarbage without a colon\n\nPackage: noversion\nStatus: install ok installed\n\n").unwrap();
    let site = root.join("usr/lib/python3/dist-packages");
    std::fs::create_dir_all(site.join("huge-1.0.dist-info")).unwrap();
    std::fs::write(
        site.join("huge-1.0.dist-info/METADATA"),
        format!(
            "Name: huge\nVersion: 1.0\nLicense: {}\n",
            "x".repeat(5 << 20)
        ),
    )
    .unwrap();
    // A symlink loop in site-packages must not hang the walk.
    std::os::unix::fs::symlink("loop", site.join("loop")).unwrap();
    std::os::unix::fs::symlink("../dist-packages", site.join("parent")).unwrap();
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut garbage_elf = b"\x7fELF\x02\x01\x01".to_vec();
    garbage_elf.extend(std::iter::repeat_n(0xffu8, 4096));
    std::fs::write(bin.join("broken"), &garbage_elf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("broken"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = dir.path().join("out");
    let report = sealcraft_ok(&[
        "sbom",
        &format!("dir:{}", root.display()),
        "-o",
        &out.display().to_string(),
        "--json",
    ]);
    assert_eq!(report["counts"], serde_json::json!({"deb": 1, "pypi": 1}));
    let codes: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| warning["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"dpkg-malformed-entry"), "{codes:?}");
}
