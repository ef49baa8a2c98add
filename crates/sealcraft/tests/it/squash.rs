use crate::support::{Item, make_image, read_tree, sealcraft_ok, skopeo_config, umoci_unpack};

fn fixture_layers() -> Vec<Vec<Item>> {
    vec![
        vec![
            Item::Dir("bin", 0o755, 0),
            Item::File("bin/app", 0o755, 0, b"#!/bin/sh\necho app\n"),
            Item::HardLink("bin/app-link", "bin/app"),
            Item::Dir("etc", 0o755, 0),
            Item::File("etc/config", 0o640, 1000, b"lower config"),
            Item::File("etc/motd", 0o644, 0, b"welcome"),
            Item::Dir("opt", 0o755, 0),
            Item::Dir("opt/old", 0o700, 1000),
            Item::File("opt/old/a", 0o600, 1000, b"a"),
            Item::File("opt/old/b", 0o600, 1000, b"b"),
            Item::Dir("srv", 0o2775, 1000),
            Item::File("srv/setuid", 0o4755, 0, b"s"),
            Item::Symlink("srv/link", "../etc/config"),
            Item::Dir("var", 0o755, 0),
            Item::Dir("var/cache", 0o755, 0),
            Item::File("var/cache/big", 0o644, 0, b"cached"),
        ],
        vec![
            // Delete a file and a directory tree; modify a file; add a hard-linked pair.
            Item::Dir("etc", 0o755, 0),
            Item::Whiteout("etc/motd"),
            Item::File("etc/config", 0o600, 1000, b"upper config"),
            Item::Whiteout("var/cache"),
            Item::Dir("usr", 0o755, 0),
            Item::File("usr/data", 0o644, 0, b"shared"),
            Item::HardLink("usr/data-alias", "usr/data"),
        ],
        vec![
            // Opaque directory recreated with new content; chmod-only change; a rename.
            Item::Dir("opt/old", 0o755, 0),
            Item::Opaque("opt/old"),
            Item::File("opt/old/c", 0o644, 0, b"c"),
            Item::Dir("srv", 0o2775, 1000),
            Item::File("srv/setuid", 0o755, 0, b"s"),
            Item::Whiteout("srv/link"),
            Item::Symlink("srv/renamed-link", "/etc/config"),
        ],
    ]
}

#[test]
fn squash_keeps_the_filesystem_and_every_config_field() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    make_image(&source, "layered", &fixture_layers());
    let output = dir.path().join("squashed");
    let report = sealcraft_ok(&[
        "squash",
        &format!("oci:{}:layered", source.display()),
        "--output",
        &format!("oci:{}:flat", output.display()),
        "--json",
    ]);
    assert_eq!(report["layers_before"], 3);

    // skopeo reads it, and sees one layer.
    let inspect: serde_json::Value = serde_json::from_str(&crate::support::run_tool(
        "skopeo",
        &["inspect", &format!("oci:{}:flat", output.display())],
    ))
    .unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    crate::support::run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:flat", output.display()),
            &format!("dir:{}", dir.path().join("copy").display()),
        ],
    );

    // umoci unpacks both; the trees are equal in every attribute.
    let original = read_tree(&umoci_unpack(
        &source,
        "layered",
        &dir.path().join("bundle-original"),
    ));
    let squashed = read_tree(&umoci_unpack(
        &output,
        "flat",
        &dir.path().join("bundle-squashed"),
    ));
    assert_eq!(original.0, squashed.0, "unpacked trees differ");
    assert_eq!(original.1, squashed.1, "hard link groups differ");
    assert!(
        !original.0.contains_key("etc/motd")
            && !original.0.contains_key("var/cache/big")
            && !original.0.contains_key("opt/old/a")
    );
    assert_eq!(
        original.1,
        vec![
            vec!["bin/app".to_owned(), "bin/app-link".to_owned()],
            vec!["usr/data".to_owned(), "usr/data-alias".to_owned()]
        ]
    );

    // Every config field survives; history gains one entry and still lines up with the layers.
    let before = skopeo_config(&source, "layered");
    let after = skopeo_config(&output, "flat");
    for field in [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
    ] {
        assert!(
            before["config"][field].is_string()
                || before["config"][field].is_array()
                || before["config"][field].is_object(),
            "fixture lacks {field}"
        );
        assert_eq!(
            before["config"][field], after["config"][field],
            "{field} changed"
        );
    }
    assert_eq!(before["architecture"], "amd64", "{before:#}");
    assert_eq!(after["architecture"], "amd64", "{after:#}");
    assert!(before["created"].is_string(), "{before:#}");
    assert_eq!(before["created"], after["created"]);
    let history = after["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        before["history"].as_array().unwrap().len() + 1
    );
    assert_eq!(
        history
            .iter()
            .filter(|entry| entry["empty_layer"] != true)
            .count(),
        1
    );
    assert!(
        history.last().unwrap()["created_by"]
            .as_str()
            .unwrap()
            .starts_with("sealcraft squash")
    );
    assert_eq!(after["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn squash_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    make_image(&source, "layered", &fixture_layers());
    let digest = |name: &str| {
        let out = dir.path().join(name);
        crate::support::digest_field(&sealcraft_ok(&[
            "squash",
            &format!("oci:{}:layered", source.display()),
            "--output",
            &format!("oci:{}:flat", out.display()),
            "--json",
        ]))
    };
    assert_eq!(digest("one"), digest("two"));
}
