//! The `file://` store (the embedded default): the same write-once and
//! verification rules as the remote stores, on a local directory.

use std::fs;

use sealcraft_secrets::Secret;
use sealcraft_store::{Credentials, Error, StoreConfig, Upload, release_layout, upload};

fn config(url: String) -> StoreConfig {
    StoreConfig {
        url,
        endpoint: None,
        region: None,
        credentials: Credentials::Ambient,
        allow_http: false,
        retries: 0,
        environment: Vec::new(),
    }
}

#[test]
fn local_uploads_follow_the_layout_and_are_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    fs::create_dir_all(&run_dir).unwrap();
    for (name, content) in [
        ("sbom-app-1.0-amd64-spdx.json", "{\"spdx\":1}\n"),
        ("sbom-app-1.0-amd64-spdx.json.sig", "c2ln\n"),
        ("scan-app-1.0-amd64.json", "{\"scan\":1}\n"),
        ("run.json", "{}\n"),
        ("events.jsonl", "{}\n"),
    ] {
        fs::write(run_dir.join(name), content).unwrap();
    }
    let uploads = release_layout(&run_dir, "amd64");
    let keys: Vec<&str> = uploads.iter().map(|upload| upload.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sboms/amd64/sbom-app-1.0-amd64-spdx.json",
            "sboms/amd64/sbom-app-1.0-amd64-spdx.json.sig",
            "scans/amd64/scan-app-1.0-amd64.json",
        ],
        "run records and event logs are not release artifacts"
    );

    let bucket = dir.path().join("bucket");
    let store = config(format!("file://{}/releases", bucket.display()));
    let report = upload(&store, &uploads).unwrap();
    assert_eq!(report.objects.len(), 3);
    for item in &uploads {
        assert_eq!(
            fs::read(bucket.join("releases").join(&item.key)).unwrap(),
            fs::read(&item.local).unwrap(),
            "{}",
            item.key
        );
    }
    assert!(report.objects.iter().all(|object| !object.already_present));

    // Identical content again: present, nothing rewritten.
    let again = upload(&store, &uploads).unwrap();
    assert!(again.objects.iter().all(|object| object.already_present));

    // Different content under a published key: refused, the original kept.
    fs::write(run_dir.join("scan-app-1.0-amd64.json"), "{\"scan\":2}\n").unwrap();
    let changed: Vec<Upload> = release_layout(&run_dir, "amd64");
    let error = upload(&store, &changed).unwrap_err();
    assert!(matches!(error, Error::Conflict { .. }), "{error}");
    assert!(error.to_string().contains("write-once"), "{error}");
    assert_eq!(
        fs::read_to_string(bucket.join("releases/scans/amd64/scan-app-1.0-amd64.json")).unwrap(),
        "{\"scan\":1}\n"
    );
}

#[test]
fn unknown_schemes_and_missing_files_are_clear_errors() {
    let error = upload(&config("ftp://host/dir".into()), &[]).unwrap_err();
    assert!(matches!(error, Error::BadUrl { .. }), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let missing = Upload {
        local: dir.path().join("absent.json"),
        key: "sboms/amd64/absent.json".into(),
    };
    let store = config(format!("file://{}", dir.path().join("bucket").display()));
    let error = upload(&store, &[missing]).unwrap_err();
    assert!(error.to_string().contains("absent.json"), "{error}");
}

#[test]
fn credentials_for_another_store_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreConfig {
        credentials: Credentials::S3 {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("s3-secret-never-shown"),
        },
        ..config(format!("file://{}", dir.path().join("bucket").display()))
    };
    let error = upload(&store, &[]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::CredentialsMismatch {
                credentials: "s3",
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("never-shown"), "{error}");
    assert!(!dir.path().join("bucket").exists());
}

#[test]
fn a_gcs_service_account_key_is_used_and_never_repeated() {
    // A key that is not a service account key fails while the client is set
    // up (so it reached the client), and the error does not quote it.
    let store = StoreConfig {
        credentials: Credentials::Gcs {
            service_account_key: Secret::new(
                "{\"type\": \"service_account\", \"private_key\": \"gcs-canary-7f3a\"}",
            ),
        },
        ..config("gs://releases/app".into())
    };
    let error = upload(&store, &[]).unwrap_err();
    let message = chain(&error);
    assert!(
        message.starts_with("configuring gs://releases/app") && message.contains("service account"),
        "{message}"
    );
    assert!(!message.contains("gcs-canary-7f3a"), "{message}");
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        message.push_str(&format!(": {error}"));
        cause = error.source();
    }
    message
}

#[test]
fn a_plain_http_endpoint_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "a").unwrap();
    let uploads = [Upload {
        local: file,
        key: "a.txt".into(),
    }];
    let store = StoreConfig {
        url: "s3://bucket/prefix".into(),
        endpoint: Some("http://127.0.0.1:1".into()),
        region: None,
        credentials: Credentials::Ambient,
        allow_http: false,
        retries: 0,
        environment: Vec::new(),
    };
    let error = upload(&store, &uploads).unwrap_err();
    assert!(
        matches!(&error, Error::PlainHttp { endpoint } if endpoint == "http://127.0.0.1:1"),
        "{error}"
    );
}
