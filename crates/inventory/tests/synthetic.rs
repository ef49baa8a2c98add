//! Catalogers on test data made here: an Alpine database, a Go binary's
//! build information and a cargo-auditable section inside minimal ELF files.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sealcraft_inventory::{DirectorySource, InventoryCode, Limits, PackageType, catalog};

/// A minimal little-endian ELF64 file with one named section holding `content`.
fn elf_with_section(name: &str, content: &[u8]) -> Vec<u8> {
    let names = format!("\0{name}\0.shstrtab\0");
    let content_offset = 64u64;
    let names_offset = content_offset + content.len() as u64;
    let section_headers = names_offset + names.len() as u64;
    let mut file = vec![0u8; 64];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2; // 64-bit
    file[5] = 1; // little endian
    file[6] = 1;
    file[0x28..0x30].copy_from_slice(&section_headers.to_le_bytes());
    file[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
    file[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
    file[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(content);
    file.extend_from_slice(names.as_bytes());
    let header = |name_offset: u32, offset: u64, size: u64| {
        let mut entry = vec![0u8; 64];
        entry[..4].copy_from_slice(&name_offset.to_le_bytes());
        entry[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
        entry[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        entry
    };
    file.extend(header(0, 0, 0));
    file.extend(header(1, content_offset, content.len() as u64));
    file.extend(header(
        u32::try_from(name.len() + 2).unwrap(),
        names_offset,
        names.len() as u64,
    ));
    file
}

fn go_buildinfo(go_version: &str, modinfo: &str) -> Vec<u8> {
    let mut bytes = b"\xff Go buildinf:".to_vec();
    bytes.extend([8, 2]);
    bytes.resize(32, 0);
    let framed = format!("{}{modinfo}{}", "0".repeat(16), "1".repeat(16));
    for text in [go_version, framed.as_str()] {
        let mut length = text.len();
        loop {
            let byte = (length & 0x7f) as u8;
            length >>= 7;
            bytes.push(if length > 0 { byte | 0x80 } else { byte });
            if length == 0 {
                break;
            }
        }
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

fn write_executable(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn alpine_go_and_cargo_packages_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    std::fs::write(
        root.join("lib/apk/db/installed"),
        "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\nC:Q1def=\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\n\nP:broken\n\n",
    )
    .unwrap();
    write_executable(
        &root.join("usr/bin/goapp"),
        &elf_with_section(
            ".go.buildinfo",
            &go_buildinfo(
                "go1.21.5",
                "path\texample.com/app\nmod\texample.com/app\tv1.0.0\t\ndep\tgolang.org/x/text\tv0.14.0\th1:x\n",
            ),
        ),
    );
    let mut compressed =
        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    compressed.write_all(br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1]},{"name":"serde","version":"1.0.190","source":"crates.io"},{"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}]}"#).unwrap();
    write_executable(
        &root.join("usr/bin/rustapp"),
        &elf_with_section(".dep-v0", &compressed.finish().unwrap()),
    );
    // Garbage that only looks like ELF, and an executable that is not ELF at all.
    write_executable(
        &root.join("usr/bin/fake"),
        &[b"\x7fELF\x02\x01".as_slice(), &[0xff; 200]].concat(),
    );
    write_executable(&root.join("usr/bin/script"), b"#!/bin/sh\necho hi\n");

    let inventory = catalog(&DirectorySource::new(root), &Limits::default());
    let packages: Vec<(PackageType, &str, &str, &str)> = inventory
        .packages
        .iter()
        .map(|p| (p.kind, p.name.as_str(), p.version.as_str(), p.purl.as_str()))
        .collect();
    assert_eq!(
        packages,
        vec![
            (
                PackageType::Apk,
                "busybox-binsh",
                "1.36.1-r15",
                "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19&upstream=busybox"
            ),
            (
                PackageType::Apk,
                "musl",
                "1.2.4_git20230717-r4",
                "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19&upstream=musl"
            ),
            (PackageType::Cargo, "app", "0.1.0", "pkg:cargo/app@0.1.0"),
            (
                PackageType::Cargo,
                "serde",
                "1.0.190",
                "pkg:cargo/serde@1.0.190"
            ),
            (
                PackageType::Golang,
                "example.com/app",
                "v1.0.0",
                "pkg:golang/example.com/app@v1.0.0"
            ),
            (
                PackageType::Golang,
                "golang.org/x/text",
                "v0.14.0",
                "pkg:golang/golang.org/x/text@v0.14.0"
            ),
            (
                PackageType::Golang,
                "stdlib",
                "1.21.5",
                "pkg:golang/stdlib@1.21.5"
            ),
        ]
    );
    let musl = &inventory.packages[1];
    assert_eq!(musl.files, vec!["/lib/ld-musl-x86_64.so.1".to_owned()]);
    assert_eq!(musl.licenses, vec!["MIT".to_owned()]);
    let codes: Vec<InventoryCode> = inventory
        .warnings
        .iter()
        .map(|warning| warning.code)
        .collect();
    assert_eq!(codes, vec![InventoryCode::ApkMalformedEntry]);
}

/// An RPM header blob with string entries (and an int32 epoch).
fn rpm_header(strings: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut entry = |tag: u32, kind: u32, offset: usize| {
        index.extend(tag.to_be_bytes());
        index.extend(kind.to_be_bytes());
        index.extend(u32::try_from(offset).unwrap().to_be_bytes());
        index.extend(1u32.to_be_bytes());
    };
    for (tag, value) in strings {
        entry(*tag, 6, data.len());
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    if let Some(epoch) = epoch {
        while data.len() % 4 != 0 {
            data.push(0);
        }
        entry(1003, 4, data.len());
        data.extend(epoch.to_be_bytes());
    }
    let mut blob = u32::try_from(index.len() / 16)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    blob.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
    blob.extend(index);
    blob.extend(data);
    blob
}

#[test]
fn rpm_packages_come_from_rpmdb_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=\"rhel\"\nVERSION_ID=\"9.3\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    let connection = rusqlite::Connection::open(root.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    connection
        .execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
            [],
        )
        .unwrap();
    let rows = [
        rpm_header(
            &[
                (1000, "openssl-libs"),
                (1001, "3.0.7"),
                (1002, "27.el9"),
                (1022, "x86_64"),
                (1014, "Apache-2.0"),
                (1044, "openssl-3.0.7-27.el9.src.rpm"),
            ],
            Some(1),
        ),
        rpm_header(
            &[
                (1000, "bash"),
                (1001, "5.1.8"),
                (1002, "9.el9"),
                (1022, "x86_64"),
                (1044, "bash-5.1.8-9.el9.src.rpm"),
            ],
            None,
        ),
        rpm_header(&[(1000, "gpg-pubkey")], None),
        vec![0, 0, 0, 250, 0, 0, 0, 4],
    ];
    for blob in &rows {
        connection
            .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .unwrap();
    }
    drop(connection);
    let inventory = catalog(&DirectorySource::new(root), &Limits::default());
    let purls: Vec<&str> = inventory
        .packages
        .iter()
        .map(|package| package.purl.as_str())
        .collect();
    assert_eq!(
        purls,
        vec![
            "pkg:rpm/rhel/bash@5.1.8-9.el9?arch=x86_64&distro=rhel-9&upstream=bash-5.1.8-9.el9.src.rpm",
            "pkg:rpm/rhel/openssl-libs@1:3.0.7-27.el9?arch=x86_64&distro=rhel-9&upstream=openssl-3.0.7-27.el9.src.rpm",
        ]
    );
    let openssl = &inventory.packages[1];
    assert_eq!(
        openssl.source.as_ref().map(|source| source.name.as_str()),
        Some("openssl")
    );
    assert_eq!(openssl.licenses, vec!["Apache-2.0".to_owned()]);
    assert_eq!(
        inventory
            .warnings
            .iter()
            .map(|warning| warning.code)
            .collect::<Vec<_>>(),
        vec![InventoryCode::RpmdbMalformedHeader]
    );

    // A file that is not SQLite is a warning, not a failure.
    std::fs::write(root.join("var/lib/rpm/rpmdb.sqlite"), b"not a database").unwrap();
    let inventory = catalog(&DirectorySource::new(root), &Limits::default());
    assert!(inventory.packages.is_empty());
    assert_eq!(inventory.warnings[0].code, InventoryCode::RpmdbUnreadable);
}
