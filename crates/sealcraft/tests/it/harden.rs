//! Hardening beyond Debian: an RPM image made and read back by the real rpm,
//! an Alpine-style apk database, and the guards that stop hardening from
//! breaking an image.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{
    Item, make_image, run_tool, sbom_names, sealcraft, sealcraft_ok, umoci_unpack,
};

/// Builds a noarch RPM named `name` owning `file` (a script), with its requires and provides.
fn rpm_package(top: &Path, name: &str, requires: &str, provides: &str, file: &str) {
    let spec = top.join(format!("{name}.spec"));
    let mut text = format!(
        "Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: {name}\nLicense: MIT\nBuildArch: noarch\n"
    );
    if !requires.is_empty() {
        text.push_str(&format!("Requires: {requires}\n"));
    }
    if !provides.is_empty() {
        text.push_str(&format!("Provides: {provides}\n"));
    }
    let directory = Path::new(file).parent().unwrap().display().to_string();
    text.push_str(&format!(
        "%description\n{name}\n%install\nmkdir -p %{{buildroot}}{directory}\nprintf '#!/bin/sh\\necho {name}\\n' > %{{buildroot}}{file}\nchmod 755 %{{buildroot}}{file}\n%files\n{file}\n"
    ));
    fs::write(&spec, text).unwrap();
    run_tool(
        "rpmbuild",
        &[
            "-bb",
            "--quiet",
            "--define",
            &format!("_topdir {}", top.display()),
            spec.to_str().unwrap(),
        ],
    );
}

fn rpm_query(root: &Path) -> Vec<String> {
    let output = Command::new("rpm")
        .args([
            "--root",
            root.to_str().unwrap(),
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME}\\n",
        ])
        .output()
        .expect("rpm is installed (scripts/test)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[test]
fn an_rpm_image_loses_rpm_and_dnf_and_rpm_still_reads_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("rpmbuild");
    fs::create_dir_all(&top).unwrap();
    rpm_package(&top, "rpm", "rpm-libs", "", "/usr/bin/rpm");
    rpm_package(
        &top,
        "rpm-libs",
        "",
        "librpm.so.9()(64bit)",
        "/usr/lib64/librpm.so.9",
    );
    rpm_package(&top, "dnf", "librpm.so.9()(64bit)", "", "/usr/bin/dnf");
    rpm_package(&top, "bash", "", "", "/usr/bin/bash");
    rpm_package(&top, "app", "bash", "", "/usr/bin/app");
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=rhel\nVERSION_ID=\"9.4\"\nNAME=\"Test\"\n",
    )
    .unwrap();
    let root_text = root.to_str().unwrap();
    run_tool(
        "rpm",
        &["--root", root_text, "--dbpath", "/var/lib/rpm", "--initdb"],
    );
    let packages: Vec<String> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .collect();
    let mut install = vec![
        "--root",
        root_text,
        "--dbpath",
        "/var/lib/rpm",
        "-i",
        "--nodeps",
        "--noscripts",
        "--nosignature",
    ];
    install.extend(packages.iter().map(String::as_str));
    run_tool("rpm", &install);
    assert_eq!(rpm_query(&root), ["app", "bash", "dnf", "rpm", "rpm-libs"]);

    let tarball = dir.path().join("root.tar");
    run_tool(
        "tar",
        &["-C", root_text, "-cf", tarball.to_str().unwrap(), "."],
    );
    let layout = dir.path().join("oci");
    sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", tarball.display()),
        "--output",
        &format!("oci:{}:plain", layout.display()),
    ]);
    let report = sealcraft_ok(&[
        "harden",
        &format!("oci:{}:plain", layout.display()),
        "--output",
        &format!("oci:{}:hardened", layout.display()),
        "--json",
    ]);
    let removed: Vec<&str> = report["report"]["packages_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["dnf", "rpm", "rpm-libs"]);
    assert_eq!(report["report"]["databases"], serde_json::json!(["rpm"]));

    let unpacked = umoci_unpack(&layout, "hardened", &dir.path().join("bundle"));
    for gone in [
        "usr/bin/rpm",
        "usr/bin/dnf",
        "usr/lib64/librpm.so.9",
        "var/lib/rpm/rpmdb.sqlite-wal",
    ] {
        assert!(!unpacked.join(gone).exists(), "{gone} is still there");
    }
    // The real rpm reads the rewritten database (opening it makes its WAL files again).
    assert_eq!(rpm_query(&unpacked), ["app", "bash"]);
    assert!(unpacked.join("usr/bin/bash").exists() && unpacked.join("usr/bin/app").exists());
}

#[test]
fn an_apk_database_loses_apk_tools_and_what_only_it_needed() {
    let installed: &'static [u8] = b"C:Q1aaaa=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
C:Q1bbbb=\nP:apk-tools\nV:2.14.0-r5\nA:x86_64\nL:GPL-2.0-only\no:apk-tools\nD:musl>=1.2 so:libc.musl-x86_64.so.1 so:libcrypto.so.3\nF:sbin\nR:apk\n\n\
C:Q1cccc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\np:so:libcrypto.so.3=3\nD:so:libc.musl-x86_64.so.1\nF:usr\nF:usr/lib\nR:libcrypto.so.3\n\n\
C:Q1dddd=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\nD:so:libc.musl-x86_64.so.1\nF:bin\nR:busybox\n\n";
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    make_image(
        &layout,
        "alpine",
        &[vec![
            Item::Dir("etc", 0o755, 0),
            Item::File(
                "etc/os-release",
                0o644,
                0,
                b"ID=alpine\nVERSION_ID=3.19.1\nNAME=\"Alpine Linux\"\n",
            ),
            Item::File(
                "etc/passwd",
                0o644,
                0,
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n",
            ),
            Item::Dir("etc/apk", 0o755, 0),
            Item::File(
                "etc/apk/repositories",
                0o644,
                0,
                b"https://mirror.example/alpine/v3.19/main\n",
            ),
            Item::File("etc/apk/world", 0o644, 0, b"busybox\n"),
            Item::Dir("lib", 0o755, 0),
            Item::File("lib/ld-musl-x86_64.so.1", 0o755, 0, b"musl"),
            Item::Dir("lib/apk", 0o755, 0),
            Item::Dir("lib/apk/db", 0o755, 0),
            Item::File("lib/apk/db/installed", 0o644, 0, installed),
            Item::Dir("sbin", 0o755, 0),
            Item::File("sbin/apk", 0o755, 0, b"apk"),
            Item::Dir("bin", 0o755, 0),
            Item::File("bin/busybox", 0o755, 0, b"busybox"),
            Item::Dir("usr", 0o755, 0),
            Item::Dir("usr/lib", 0o755, 0),
            Item::File("usr/lib/libcrypto.so.3", 0o755, 0, b"crypto"),
            Item::Dir("var", 0o755, 0),
            Item::Dir("var/cache", 0o755, 0),
            Item::Dir("var/cache/apk", 0o755, 0),
            Item::File("var/cache/apk/APKINDEX.tar.gz", 0o644, 0, b"index"),
        ]],
    );
    let report = sealcraft_ok(&[
        "harden",
        &format!("oci:{}:alpine", layout.display()),
        "--output",
        &format!("oci:{}:hardened", layout.display()),
        "--json",
    ]);
    let removed: Vec<(&str, &str)> = report["report"]["packages_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["name"].as_str().unwrap(),
                package["reason"].as_str().unwrap(),
            )
        })
        .collect();
    // libcrypto3 is not in world: apk installed it for apk-tools.
    assert_eq!(
        removed,
        [
            ("apk-tools", "requested"),
            ("libcrypto3", "only-needed-by-removed")
        ]
    );
    let unpacked = umoci_unpack(&layout, "hardened", &dir.path().join("bundle"));
    for gone in [
        "sbin/apk",
        "etc/apk",
        "usr/lib/libcrypto.so.3",
        "var/cache/apk/APKINDEX.tar.gz",
    ] {
        assert!(!unpacked.join(gone).exists(), "{gone} is still there");
    }
    let database = fs::read_to_string(unpacked.join("lib/apk/db/installed")).unwrap();
    let original = String::from_utf8_lossy(installed);
    for record in database
        .split("\n\n")
        .filter(|record| !record.trim().is_empty())
    {
        assert!(
            original.contains(record),
            "a kept record changed: {record:?}"
        );
    }
    assert!(!database.contains("P:apk-tools") && !database.contains("P:libcrypto3"));
    // The SBOM of the hardened image sees what is left.
    let sbom_dir = dir.path().join("sbom");
    sealcraft_ok(&[
        "sbom",
        &format!("oci:{}:hardened", layout.display()),
        "--format",
        "cyclonedx",
        "-o",
        sbom_dir.to_str().unwrap(),
    ]);
    let path = fs::read_dir(&sbom_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let names: Vec<String> = sbom_names(&path, "pkg:apk/").into_iter().collect();
    assert_eq!(names, ["busybox", "musl"]);
}

#[test]
fn hardening_refuses_to_remove_what_the_image_runs_and_keeps_what_it_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    // make_image's config runs /bin/app; make that a shell hardening would remove.
    make_image(
        &layout,
        "image",
        &[vec![
            Item::Dir("bin", 0o755, 0),
            Item::File("bin/sh", 0o755, 0, b"#!shell"),
            Item::Symlink("bin/app", "sh"),
            Item::Dir("usr", 0o755, 0),
            Item::Dir("usr/share", 0o755, 0),
            Item::Dir("usr/share/man", 0o755, 0),
            Item::File("usr/share/man/app.1", 0o644, 0, b"manual"),
            Item::Dir("usr/share/doc", 0o755, 0),
            Item::Dir("usr/share/doc/app", 0o755, 0),
            Item::File("usr/share/doc/app/README", 0o644, 0, b"readme"),
            Item::File("usr/share/doc/app/copyright", 0o644, 0, b"MIT"),
        ]],
    );
    let source = format!("oci:{}:image", layout.display());
    let refused = sealcraft(
        &[
            "harden",
            &source,
            "--output",
            &format!("oci:{}:no", layout.display()),
            "--remove-shells",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the image runs /bin/app"), "{stderr}");
    // Without shells removed, docs go (copyright stays), and a keep pattern saves the man page.
    sealcraft_ok(&[
        "harden",
        &source,
        "--output",
        &format!("oci:{}:kept", layout.display()),
        "--keep",
        "usr/share/man/*.1",
    ]);
    let unpacked = umoci_unpack(&layout, "kept", &dir.path().join("bundle"));
    assert!(unpacked.join("usr/share/man/app.1").exists());
    assert!(unpacked.join("usr/share/doc/app/copyright").exists());
    assert!(!unpacked.join("usr/share/doc/app/README").exists());
    assert!(unpacked.join("bin/sh").exists());
}
