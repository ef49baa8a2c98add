//! Debian's own archive, through the mirror this machine's apt
//! configuration names: its suites verified against the keyring Debian
//! ships, and their indexes read through the signed checksums.

use std::path::Path;
use std::time::SystemTime;

use sealcraft_apt::{
    Fetcher, KeyFiles, Keyring, Repository, RepositorySpec, SignatureError, sources,
};

/// The host's files.
struct Host;

impl KeyFiles for Host {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    fn defaults(&self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
}

fn host_sources() -> Vec<sealcraft_apt::Source> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/etc/apt/sources.list.d").unwrap() {
        let path = entry.unwrap().path();
        let name = path.display().to_string();
        if name.ends_with(".sources") || name.ends_with(".list") {
            let text = std::fs::read_to_string(&path).unwrap();
            found.extend(sources::parse(&text, &name).unwrap());
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        found.extend(sources::parse(&text, "/etc/apt/sources.list").unwrap());
    }
    assert!(
        !found.is_empty(),
        "this machine's apt configuration names no source"
    );
    found
}

#[test]
fn the_mirror_s_suites_verify_and_their_indexes_check_out() {
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path().to_path_buf(), 3);
    let sources = host_sources();
    let repository = Repository::open(
        &RepositorySpec {
            sources: &sources,
            keys: &Host,
            architectures: &["amd64".to_owned()],
            now: SystemTime::now(),
            check_valid_until: true,
        },
        &fetcher,
    )
    .unwrap();
    assert_eq!(repository.suites.len(), sources.len());
    assert!(
        repository.packages.len() > 10_000,
        "{}",
        repository.packages.len()
    );
    let libc = repository
        .packages
        .iter()
        .find(|package| package.name == "libc6" && package.architecture == "amd64")
        .expect("the mirror offers libc6");
    assert_eq!(libc.multi_arch.as_deref(), Some("same"));
    // A package downloads, checks out against its index entry, and opens.
    let smallest = repository
        .packages
        .iter()
        .filter(|package| package.name == "base-passwd" || package.name == "netbase")
        .min_by_key(|package| package.size)
        .expect("a small package");
    let deb = repository.download(smallest, &fetcher).unwrap();
    let opened = sealcraft_deb::DebPackage::open(&deb).unwrap();
    assert_eq!(opened.name(), smallest.name);
    assert_eq!(opened.version(), smallest.version);
    // The second time it comes from the cache.
    assert_eq!(repository.download(smallest, &fetcher).unwrap(), deb);

    // The same InRelease, changed by one byte, does not verify.
    let suite = &repository.suites[0];
    let text = String::from_utf8(fetcher.get(&suite.release_url).unwrap().unwrap()).unwrap();
    let mut keyring = Keyring::default();
    keyring
        .add(
            "debian-archive-keyring.gpg",
            &std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg").unwrap(),
        )
        .unwrap();
    keyring.verify_cleartext(&text, SystemTime::now()).unwrap();
    let tampered = text.replacen("SHA256:\n ", "SHA256:\n 0", 1);
    assert_ne!(tampered, text);
    let error = keyring
        .verify_cleartext(&tampered, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(error, SignatureError::BadSignature { .. }),
        "{error}"
    );
    // A keyring without Debian's keys finds no known signer.
    let mut other = Keyring::default();
    other
        .add(
            "debian-archive-removed-keys.gpg",
            &std::fs::read("/usr/share/keyrings/debian-archive-removed-keys.gpg").unwrap(),
        )
        .unwrap();
    assert!(other.verify_cleartext(&text, SystemTime::now()).is_err());
}
