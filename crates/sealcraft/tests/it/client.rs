//! The registry client's protocol features against the real registry, and
//! retries through a fault-injecting proxy in front of it.

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sealcraft_oci::digest::sha256_of;
use sealcraft_oci::manifest::{Descriptor, Index, Manifest, media_type};
use sealcraft_registry::{Client, ClientConfig, Upload};

use crate::registry::TestRegistry;

fn plain_client(registry: &TestRegistry, chunk_size: u64) -> Client {
    Client::new(ClientConfig {
        allow_http: vec![registry.address.clone()],
        retries: 3,
        chunk_size,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn random_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// Pushes a one-layer image to `repository` and returns its manifest bytes.
fn push_image(
    client: &Client,
    registry: &str,
    repository: &str,
    tag: &str,
    seed: u64,
) -> (Vec<u8>, Descriptor) {
    let layer = random_bytes(1000, seed);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer_digest = sha256_of(&layer);
    let config_digest = sha256_of(&config);
    client
        .push_blob(
            registry,
            repository,
            &layer_digest,
            layer.len() as u64,
            &Upload::Bytes(&layer),
            None,
        )
        .unwrap();
    client
        .push_blob(
            registry,
            repository,
            &config_digest,
            config.len() as u64,
            &Upload::Bytes(&config),
            None,
        )
        .unwrap();
    let manifest = Manifest::new_oci(
        Descriptor::new(media_type::OCI_CONFIG, config_digest, config.len() as u64),
        vec![Descriptor::new(
            media_type::OCI_LAYER_TAR,
            layer_digest,
            1000,
        )],
    );
    let bytes = serde_json::to_vec(&manifest).unwrap();
    client
        .put_manifest(registry, repository, tag, media_type::OCI_MANIFEST, &bytes)
        .unwrap();
    let descriptor = Descriptor::new(
        media_type::OCI_MANIFEST,
        sha256_of(&bytes),
        bytes.len() as u64,
    );
    (bytes, descriptor)
}

#[test]
fn chunked_uploads_mounts_tags_and_referrers() {
    let registry = TestRegistry::plain();
    let address = registry.address.as_str();
    let client = plain_client(&registry, 64 << 10);
    client.ping(address).unwrap();

    // Chunked upload of a blob spanning several chunks, read back verified.
    let blob = random_bytes(300 << 10, 7);
    let digest = sha256_of(&blob);
    client
        .push_blob(
            address,
            "chunks/repo",
            &digest,
            blob.len() as u64,
            &Upload::Bytes(&blob),
            None,
        )
        .unwrap();
    assert_eq!(
        client
            .get_blob(address, "chunks/repo", &digest, 1 << 20)
            .unwrap(),
        blob
    );
    let patches = registry
        .requests()
        .iter()
        .filter(|line| {
            line.starts_with("PATCH /v2/chunks/repo/blobs/uploads/") && line.ends_with(" 202")
        })
        .count();
    assert_eq!(patches, 5, "{:#?}", registry.requests());

    // Cross-repository mount: the registry answers 201 to the POST and no data is sent.
    client
        .push_blob(
            address,
            "chunks/other",
            &digest,
            blob.len() as u64,
            &Upload::Bytes(&blob),
            Some("chunks/repo"),
        )
        .unwrap();
    assert!(
        registry
            .requests()
            .iter()
            .any(|line| line.starts_with(&format!(
                "POST /v2/chunks/other/blobs/uploads/?mount={digest}&from=chunks/repo "
            )) && line.ends_with(" 201")),
        "{:#?}",
        registry.requests()
    );
    assert!(client.has_blob(address, "chunks/other", &digest).unwrap());

    // Tags, listed in full.
    let mut expected = Vec::new();
    for number in 0..12 {
        let tag = format!("t{number:02}");
        push_image(&client, address, "tags/repo", &tag, number);
        expected.push(tag);
    }
    let mut tags = client.list_tags(address, "tags/repo").unwrap();
    tags.sort();
    assert_eq!(tags, expected);
    assert!(client.list_tags(address, "tags/absent").unwrap().is_empty());

    // Referrers: the registry has no referrers API, so the sha256-<hex> index is read.
    let (_, subject) = push_image(&client, address, "refs/repo", "v1", 99);
    assert!(
        client
            .referrers(address, "refs/repo", &subject.digest)
            .unwrap()
            .is_empty()
    );
    let (_, artifact) = push_image(&client, address, "refs/repo", "artifact", 100);
    let mut index = Index::new_oci();
    let mut entry = artifact.clone();
    entry.artifact_type = Some("application/spdx+json".into());
    index.manifests.push(entry);
    let index_bytes = serde_json::to_vec(&index).unwrap();
    client
        .put_manifest(
            address,
            "refs/repo",
            &format!("sha256-{}", subject.digest.digest()),
            media_type::OCI_INDEX,
            &index_bytes,
        )
        .unwrap();
    let referrers = client
        .referrers(address, "refs/repo", &subject.digest)
        .unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest, artifact.digest);

    // Missing manifests are None; a manifest fetched by digest is verified.
    assert!(
        client
            .get_manifest(address, "refs/repo", "nope")
            .unwrap()
            .is_none()
    );
    let fetched = client
        .get_manifest(address, "refs/repo", subject.digest.as_ref())
        .unwrap()
        .unwrap();
    assert_eq!(fetched.digest, subject.digest);
    assert_eq!(fetched.media_type, media_type::OCI_MANIFEST);
}

/// A TCP proxy that drops the first `failures` connections, then forwards.
fn flaky_proxy(target: String, failures: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if counter.fetch_add(1, Ordering::SeqCst) < failures {
                drop(client);
                continue;
            }
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut server_write);
                let _ = server_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
                let _ = client_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (address, seen)
}

#[test]
fn dropped_connections_are_retried_and_then_reported() {
    let registry = TestRegistry::plain();
    let (proxy, seen) = flaky_proxy(registry.address.clone(), 2);
    let client = Client::new(ClientConfig {
        allow_http: vec![proxy.clone()],
        retries: 3,
        ..ClientConfig::default()
    })
    .unwrap();
    client.ping(&proxy).unwrap();
    assert!(
        seen.load(Ordering::SeqCst) >= 3,
        "the proxy saw {} connections",
        seen.load(Ordering::SeqCst)
    );
    let blob = random_bytes(4096, 3);
    client
        .push_blob(
            &proxy,
            "retry/repo",
            &sha256_of(&blob),
            4096,
            &Upload::Bytes(&blob),
            None,
        )
        .unwrap();

    // A proxy that never forwards: retries run out with a clear error.
    let (dead, _) = flaky_proxy(registry.address.clone(), usize::MAX);
    let client = Client::new(ClientConfig {
        allow_http: vec![dead.clone()],
        retries: 2,
        ..ClientConfig::default()
    })
    .unwrap();
    let error = client.ping(&dead).unwrap_err();
    assert!(error.to_string().contains("cannot reach"), "{error}");
}

#[test]
fn credentials_come_from_the_docker_config() {
    let registry = TestRegistry::tls_with_auth();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    crate::support::make_image(
        &layout,
        "v1",
        &[vec![crate::support::Item::File("f", 0o644, 0, b"x")]],
    );
    assert!(
        crate::support::sealcraft(
            &[
                "key",
                "generate",
                "--output-dir",
                &dir.path().display().to_string()
            ],
            &[("COSIGN_PASSWORD", "p")]
        )
        .status
        .success()
    );
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", crate::registry::USER, crate::registry::PASSWORD),
    );
    let auths: HashMap<String, serde_json::Value> =
        [(registry.address.clone(), serde_json::json!({"auth": auth}))].into();
    std::fs::write(
        docker.join("config.json"),
        serde_json::to_vec(&serde_json::json!({"auths": auths})).unwrap(),
    )
    .unwrap();
    let destination = format!("{}/docker/config:v1", registry.address);
    let output = crate::support::sealcraft(
        &[
            "publish",
            &format!("oci:{}:v1", layout.display()),
            &destination,
            "--key",
            &dir.path().join("cosign.key").display().to_string(),
            "--ca-bundle",
            &registry.ca.display().to_string(),
        ],
        &[
            ("COSIGN_PASSWORD", "p"),
            ("DOCKER_CONFIG", &docker.display().to_string()),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut body = String::new();
    std::fs::File::open(registry.dir.path().join(
        "data/docker/registry/v2/repositories/docker/config/_manifests/tags/v1/current/link",
    ))
    .unwrap()
    .read_to_string(&mut body)
    .unwrap();
    assert!(body.starts_with("sha256:"));
}
