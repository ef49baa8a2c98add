//! `.deb` files made by the real dpkg-deb, in every compression it writes,
//! read back entry for entry; hand-made hostile packages refused.

use std::fs;
use std::path::Path;
use std::process::Command;

use sealcraft_deb::{DebPackage, EntryKind, Error};

/// A package tree: control, conffiles, maintainer script, a file, a conffile, a symlink.
fn package_tree(root: &Path) {
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        "Package: demo\nVersion: 1:2.0-1\nArchitecture: all\nMaintainer: Tests <tests@example.invalid>\nDepends: libc6 (>= 2.34)\nDescription: a demo\n with a long description\n",
    )
    .unwrap();
    fs::write(root.join("DEBIAN/conffiles"), "/etc/demo.conf\n").unwrap();
    fs::write(root.join("DEBIAN/postinst"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(
        root.join("DEBIAN/postinst"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/demo"), "#!/bin/sh\necho demo\n").unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/demo.conf"), "setting=1\n").unwrap();
    std::os::unix::fs::symlink("demo", root.join("usr/bin/demo-alias")).unwrap();
}

fn dpkg_deb(args: &[&str]) -> String {
    let output = Command::new("dpkg-deb")
        .args(args)
        .output()
        .expect("dpkg-deb is installed (Debian's dpkg)");
    assert!(
        output.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn packages_dpkg_deb_writes_read_back_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    package_tree(&tree);
    for compression in ["xz", "gzip", "zstd", "none"] {
        let deb = dir.path().join(format!("demo-{compression}.deb"));
        dpkg_deb(&[
            "--root-owner-group",
            &format!("-Z{compression}"),
            "--build",
            tree.to_str().unwrap(),
            deb.to_str().unwrap(),
        ]);
        let package = DebPackage::open(&deb).unwrap();
        assert_eq!(
            (package.name(), package.version(), package.architecture()),
            ("demo", "1:2.0-1", "all"),
            "{compression}"
        );
        assert_eq!(
            package.control.get("Description"),
            Some("a demo\n with a long description")
        );
        assert_eq!(
            package.control_files.get("conffiles").map(Vec::as_slice),
            Some(&b"/etc/demo.conf\n"[..])
        );
        assert!(package.control_files.contains_key("postinst"));
        let mut entries = Vec::new();
        package
            .data_entries(|entry, content| {
                let mut bytes = Vec::new();
                content.read_to_end(&mut bytes).unwrap();
                entries.push((entry, bytes));
                Ok(())
            })
            .unwrap();
        // Every path dpkg-deb lists, in its order.
        let contents = dpkg_deb(&["--contents", deb.to_str().unwrap()]);
        let expected: Vec<String> = contents
            .lines()
            .map(|line| {
                let name = line.split_whitespace().nth(5).unwrap();
                name.trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
        let ours: Vec<String> = entries
            .iter()
            .map(|(entry, _)| entry.path.display().to_string())
            .collect();
        assert_eq!(ours, expected, "{compression}");
        let demo = entries
            .iter()
            .find(|(entry, _)| entry.path == Path::new("usr/bin/demo"))
            .unwrap();
        assert_eq!(demo.1, b"#!/bin/sh\necho demo\n");
        assert_eq!((demo.0.uid, demo.0.gid), (0, 0));
        let alias = entries
            .iter()
            .find(|(entry, _)| entry.path == Path::new("usr/bin/demo-alias"))
            .unwrap();
        assert_eq!(alias.0.kind, EntryKind::Symlink("demo".into()));
    }
}

/// An ar archive of `members` (name, content), as dpkg-deb lays them out.
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, content) in members {
        out.extend(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                content.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(content);
        if content.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_old();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw so that hostile names reach the reader as they are.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn hostile_and_malformed_packages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let control = tar_of(&[(
        "./control",
        b"Package: evil\nVersion: 1\nArchitecture: all\n",
    )]);
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    let escape = write(
        "escape.deb",
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control),
            (
                "data.tar",
                &tar_of(&[("../../etc/passwd", b"root::0:0::/:/bin/sh\n")]),
            ),
        ]),
    );
    let package = DebPackage::open(&escape).unwrap();
    let error = package.data_entries(|_, _| Ok(())).unwrap_err();
    assert!(
        matches!(&error, Error::BadPackage { reason, .. } if reason.contains("outside the root")),
        "{error}"
    );
    let cases = [
        ("not-ar.deb", b"just text".to_vec(), "not an ar archive"),
        (
            "format3.deb",
            ar(&[
                ("debian-binary", b"3.0\n"),
                ("control.tar", &control),
                ("data.tar", &[]),
            ]),
            "format 2",
        ),
        (
            "no-data.deb",
            ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control)]),
            "no data.tar",
        ),
        (
            "odd-member.deb",
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("surprise", b"x"),
                ("control.tar", &control),
            ]),
            "unknown member",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = write(name, bytes);
        let error = DebPackage::open(&path).unwrap_err();
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
    let mut truncated = ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control)]);
    truncated.truncate(truncated.len() - 10);
    let path = write("truncated.deb", truncated);
    assert!(DebPackage::open(&path).is_err());
}
