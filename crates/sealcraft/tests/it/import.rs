use crate::support::{Item, make_image, run_tool, sealcraft_ok, skopeo_config};

fn fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let layout = dir.join("source");
    make_image(
        &layout,
        "v1",
        &[
            vec![
                Item::Dir("etc", 0o755, 0),
                Item::File("etc/hostname", 0o644, 0, b"box"),
            ],
            vec![
                Item::Whiteout("etc/hostname"),
                Item::File("etc/issue", 0o644, 0, b"hello"),
            ],
        ],
    );
    layout
}

#[test]
fn archives_written_by_skopeo_import_with_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixture(dir.path());
    let original = skopeo_config(&source, "v1");
    let docker_archive = dir.path().join("docker.tar");
    let oci_archive = dir.path().join("oci.tar");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:v1", source.display()),
            &format!("docker-archive:{}:example/app:v1", docker_archive.display()),
        ],
    );
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:v1", source.display()),
            &format!("oci-archive:{}:v1", oci_archive.display()),
        ],
    );

    let target = dir.path().join("imported");
    for (name, tag) in [
        (
            format!("docker-archive:{}", docker_archive.display()),
            "from-docker",
        ),
        (
            format!("oci-archive:{}:v1", oci_archive.display()),
            "from-oci",
        ),
        (format!("oci:{}:v1", source.display()), "from-layout"),
    ] {
        sealcraft_ok(&[
            "image",
            "import",
            &name,
            "--output",
            &format!("oci:{}:{tag}", target.display()),
            "--json",
        ]);
        let imported = skopeo_config(&target, tag);
        assert_eq!(
            imported["rootfs"], original["rootfs"],
            "{name}: layers differ"
        );
        assert_eq!(
            imported["config"], original["config"],
            "{name}: config differs"
        );
    }
    // The copy from an OCI layout keeps the manifest byte for byte.
    let source_digest = crate::support::digest_field(&sealcraft_ok(&[
        "image",
        "inspect",
        &format!("oci:{}:v1", source.display()),
        "--json",
    ]));
    let copied_digest = crate::support::digest_field(&sealcraft_ok(&[
        "image",
        "inspect",
        &format!("oci:{}:from-layout", target.display()),
        "--json",
    ]));
    assert_eq!(source_digest, copied_digest);
}

#[test]
fn a_rootfs_tarball_becomes_a_one_layer_image() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    std::fs::write(rootfs.join("etc/os-release"), b"ID=test\n").unwrap();
    let tarball = dir.path().join("rootfs.tar.gz");
    run_tool(
        "tar",
        &[
            "-C",
            &rootfs.display().to_string(),
            "-czf",
            &tarball.display().to_string(),
            ".",
        ],
    );
    let output = dir.path().join("out");
    let import = |tag: &str| {
        crate::support::digest_field(&sealcraft_ok(&[
            "image",
            "import",
            &format!("rootfs:{}", tarball.display()),
            "--output",
            &format!("oci:{}:{tag}", output.display()),
            "--json",
        ]))
    };
    assert_eq!(
        import("a"),
        import("b"),
        "imports of the same tarball must agree"
    );
    let config = skopeo_config(&output, "a");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let bundle = dir.path().join("bundle");
    let unpacked = crate::support::umoci_unpack(&output, "a", &bundle);
    assert_eq!(
        std::fs::read(unpacked.join("etc/os-release")).unwrap(),
        b"ID=test\n"
    );
}

#[test]
fn garbage_collection_keeps_what_tags_reach() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixture(dir.path());
    let layout = format!("oci:{}", source.display());
    let kept = sealcraft_ok(&["image", "gc", &layout, "--json"]);
    assert_eq!(kept["removed"].as_array().unwrap().len(), 0);
    std::fs::write(
        source
            .join("blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000"),
        b"stray",
    )
    .unwrap();
    let removed = sealcraft_ok(&["image", "gc", &layout, "--json"]);
    assert_eq!(removed["removed"].as_array().unwrap().len(), 1);
    run_tool(
        "skopeo",
        &["inspect", &format!("oci:{}:v1", source.display())],
    );
}
