//! Plan validation: valid configs, errors at their line and key.

use super::*;

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn config(version: &str, architectures: &str, base: &str) -> String {
    format!(
        "[project]\nname = \"hello\"\nversion = \"{version}\"\nregistry = \"registry.example.com/team\"\narchitectures = {architectures}\n\n[base]\nimage = \"{base}\"\n"
    )
}

fn parse(text: &str) -> Result<Plan> {
    Plan::parse(
        text,
        Path::new("/project/sealcraft.toml"),
        &PlanInputs::default(),
    )
}

#[test]
fn a_valid_config_becomes_a_plan() {
    let plan = parse(&config(
        "1.2.3",
        "[\"amd64\"]",
        &format!("oci:base:bookworm@{DIGEST}"),
    ))
    .unwrap();
    assert_eq!(
        plan.image_name("amd64"),
        "registry.example.com/team/hello:1.2.3-amd64"
    );
    assert_eq!(
        plan.run_dir("amd64"),
        PathBuf::from("/project/out/hello-1.2.3-amd64")
    );
    let BuildSource::Assembly(assembly) = &plan.source else {
        panic!("an assembly plan expected");
    };
    assert_eq!(assembly.base.layout, PathBuf::from("/project/base"));
    assert_eq!(assembly.base.tag.as_deref(), Some("bookworm"));
    assert!(plan.squash);
}

fn error_of(text: &str) -> (usize, String) {
    match parse(text).unwrap_err() {
        Error::Config {
            line, key, message, ..
        } => (line, format!("{key}: {message}")),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn bad_configs_point_at_the_line_and_key() {
    let pinned = format!("oci:base:bookworm@{DIGEST}");
    let (line, message) = error_of(&config("latest", "[\"amd64\"]", &pinned));
    assert_eq!(line, 3, "{message}");
    assert!(message.contains("project.version"), "{message}");

    let (line, message) = error_of(&config("1.0", "[]", &pinned));
    assert_eq!(line, 5, "{message}");

    let (line, message) = error_of(&config("1.0", "[\"amd64\"]", "oci:base:bookworm"));
    assert_eq!(line, 8, "{message}");
    assert!(message.contains("not pinned"), "{message}");

    let (line, message) = error_of(&format!(
        "{}\n[user]\nname = \"app\"\nuid = 0\n",
        config("1.0", "[\"amd64\"]", &pinned)
    ));
    assert_eq!(line, 12, "{message}");

    let (line, message) = error_of(&format!(
        "{}\n[[files]]\nsource = \"/nonexistent/x\"\ndestination = \"/x\"\n",
        config("1.0", "[\"amd64\"]", &pinned)
    ));
    assert_eq!(line, 11, "{message}");

    let (line, message) = error_of(&format!(
        "{}unknown_key = 1\n",
        config("1.0", "[\"amd64\"]", &pinned)
    ));
    assert_eq!(line, 9, "{message}");
}

#[test]
fn a_signing_key_can_live_in_the_vault() {
    let pinned = format!("oci:base:bookworm@{DIGEST}");
    let with_key = |key: &str| {
        format!(
            "{}\n[publish]\nkey = \"{key}\"\ntarget = \"oci:/project/published\"\n",
            config("1.0", "[\"amd64\"]", &pinned)
        )
    };
    let plan = parse(&with_key("vault-transit:release")).unwrap();
    assert_eq!(
        plan.publish.unwrap().key,
        SigningKey::Transit("vault-transit:release".into())
    );
    let (line, message) = error_of(&with_key("vault-transit:"));
    assert_eq!(line, 11, "{message}");
    let plan = parse(&with_key("vault:secret/release/cosign#key")).unwrap();
    assert_eq!(
        plan.publish.unwrap().key,
        SigningKey::Vault("vault:secret/release/cosign#key".into())
    );
    // A reference without a field is rejected where it is written.
    let (line, message) = error_of(&with_key("vault:secret/release/cosign"));
    assert_eq!(line, 11, "{message}");
    assert!(message.starts_with("publish.key"), "{message}");
    // Anything else is a file, and it must exist.
    let (line, message) = error_of(&with_key("keys/cosign.key"));
    assert_eq!(line, 11, "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

/// A project with a Dockerfile in a temporary directory; `build` is the rest of `[build]`.
#[test]
fn upload_credentials_belong_to_their_store() {
    let base = config("1.0", "[\"amd64\"]", &format!("oci:base:bookworm@{DIGEST}"));
    let upload = |section: &str| format!("{base}\n[upload]\n{section}");
    let plan = parse(&upload(
        "url = \"az://releases/app\"\nendpoint = \"https://acct.blob.example\"\naccount = \"acct\"\naccess_key = \"vault:secret/azure#key\"\n",
    ))
    .unwrap();
    assert_eq!(
        plan.upload.unwrap().credentials,
        UploadCredentials::Azure {
            account: "acct".into(),
            access_key: "vault:secret/azure#key".into()
        }
    );
    let plan = parse(&upload(
        "url = \"gs://releases/app\"\nservice_account_key = \"file:/run/gcs.json\"\n",
    ))
    .unwrap();
    assert_eq!(
        plan.upload.unwrap().credentials,
        UploadCredentials::Gcs {
            service_account_key: "file:/run/gcs.json".into()
        }
    );
    let plan = parse(&upload("url = \"s3://releases/app\"\n")).unwrap();
    assert_eq!(plan.upload.unwrap().credentials, UploadCredentials::Ambient);

    // Line 11 is the first setting of [upload].
    let (line, message) = error_of(&upload(
        "url = \"gs://releases/app\"\naccess_key_id = \"env:KEY\"\nsecret_access_key = \"env:SECRET\"\n",
    ));
    assert_eq!(line, 12, "{message}");
    assert_eq!(
        message,
        "upload.access_key_id: `access_key_id` is for s3:// stores, and the URL is gs://"
    );
    let (line, message) = error_of(&upload("url = \"az://c/p\"\naccount = \"acct\"\n"));
    assert_eq!(line, 12, "{message}");
    assert_eq!(message, "upload: `account` and `access_key` go together");
    let (_, message) = error_of(&upload(
        "url = \"az://c/p\"\naccount = \"acct\"\naccess_key = \"Eby8vdM02xNOcqFl==\"\n",
    ));
    assert!(message.contains("must be secret references"), "{message}");
    assert!(!message.contains("Eby8vdM02xNOcqFl"), "{message}");
    let (_, message) = error_of(&upload("url = \"file:///srv\"\nregion = \"eu\"\n"));
    assert_eq!(
        message,
        "upload: a file:// store takes no endpoint or region"
    );
    let (_, message) = error_of(&upload("url = \"ftp://host/dir\"\n"));
    assert!(
        message.starts_with("upload.url: \"ftp://host/dir\" is not"),
        "{message}"
    );
}

fn dockerfile_project(
    dockerfile: &str,
    build: &str,
    extra: &str,
) -> (tempfile::TempDir, Result<Plan>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let text = format!(
        "[project]\nname = \"app\"\nversion = \"1.0\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n\n[build]\ndockerfile = \"Dockerfile\"\n{build}\n{extra}"
    );
    let path = dir.path().join("sealcraft.toml");
    let plan = Plan::parse(&text, &path, &PlanInputs::default());
    (dir, plan)
}

#[test]
fn a_dockerfile_build_is_pinned_through_its_base_mappings() {
    let dockerfile = "ARG BASE=debian:bookworm\nFROM ${BASE} AS builder\nFROM scratch\nCOPY --from=builder /x /x\n";
    let mapping = format!("[build.bases]\n\"debian:bookworm\" = \"oci:base:bookworm@{DIGEST}\"\n");
    let (_, plan) = dockerfile_project(dockerfile, "", &mapping);
    let plan = plan.unwrap();
    let BuildSource::Dockerfile(build) = &plan.source else {
        panic!("a Dockerfile plan expected");
    };
    assert!(build.require_pinned);
    let mapped = &build.bases["debian:bookworm"];
    assert!(
        mapped.starts_with("oci:/") && mapped.ends_with(&format!("base:bookworm@{DIGEST}")),
        "{mapped}"
    );
    assert!(build.digest.starts_with("sha256:"));
    assert!(plan.summary().dockerfile.is_some() && plan.summary().base_image.is_none());
    // Without the mapping the FROM is not pinned: refused at its line, before anything runs.
    let (_, plan) = dockerfile_project(dockerfile, "", "");
    match plan.unwrap_err() {
        Error::Dockerfile(sealcraft_dockerfile::Error::At { line, source, .. }) => {
            assert_eq!(line, 2);
            assert!(
                matches!(*source, sealcraft_dockerfile::Error::NotPinned { .. }),
                "{source}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    // Unless pins are explicitly not required.
    let (_, plan) = dockerfile_project(dockerfile, "require_pinned = false", "");
    assert!(plan.is_ok());
    // A broken Dockerfile is refused with its own line.
    let (_, plan) = dockerfile_project("FROM scratch\nBOGUS x\n", "", "");
    assert!(matches!(
        plan.unwrap_err(),
        Error::Dockerfile(sealcraft_dockerfile::Error::Parse { line: 2, .. })
    ));
}

#[test]
fn dockerfile_and_assembly_settings_do_not_mix() {
    let dockerfile = format!("FROM debian@{DIGEST}\n");
    let config_error = |plan: Result<Plan>| match plan.unwrap_err() {
        Error::Config {
            line, key, message, ..
        } => (line, format!("{key}: {message}")),
        other => panic!("unexpected {other}"),
    };
    let (_, plan) = dockerfile_project(
        &dockerfile,
        "",
        &format!("[base]\nimage = \"oci:base:x@{DIGEST}\"\n"),
    );
    let (line, message) = config_error(plan);
    assert_eq!(line, 10, "{message}");
    assert!(
        message.starts_with("base: [base] is for native assembly"),
        "{message}"
    );
    let (_, plan) = dockerfile_project(&dockerfile, "network = \"bridge\"", "");
    assert!(config_error(plan).1.starts_with("build.network"));
    let (_, plan) = dockerfile_project(&dockerfile, "runtime = \"youki\"", "");
    assert!(config_error(plan).1.starts_with("build.runtime"));
    let (_, plan) = dockerfile_project(
        &dockerfile,
        "[[build.secrets]]\nid = \"npm\"\nsource = \"s3cr3t\"",
        "",
    );
    assert!(config_error(plan).1.starts_with("build.secrets.source"));
    // Dockerfile settings without a Dockerfile.
    let text = format!(
        "{}\n[build]\ncontext = \".\"\n",
        config("1.0", "[\"amd64\"]", &format!("oci:base:bookworm@{DIGEST}"))
    );
    let (line, message) = error_of(&text);
    assert_eq!(line, 11, "{message}");
    assert!(
        message.contains("only applies to Dockerfile builds"),
        "{message}"
    );
    // Neither a base nor a Dockerfile.
    let (_, message) = error_of(
        "[project]\nname = \"x\"\nversion = \"1\"\nregistry = \"r.example.com/t\"\narchitectures = [\"amd64\"]\n",
    );
    assert!(message.contains("a Dockerfile"), "{message}");
}

#[test]
fn a_plain_http_endpoint_needs_allow_http() {
    let base = config("1.0", "[\"amd64\"]", &format!("oci:base:bookworm@{DIGEST}"));
    let upload = |section: &str| format!("{base}\n[upload]\n{section}");
    let (line, message) = error_of(&upload(
        "url = \"s3://releases/app\"\nendpoint = \"http://127.0.0.1:9000\"\n",
    ));
    assert_eq!(line, 12, "the endpoint's line: {message}");
    assert!(
        message.starts_with("upload.endpoint: http://127.0.0.1:9000 is plain HTTP")
            && message.contains("`allow_http = true`"),
        "{message}"
    );
    let plan = parse(&upload(
        "url = \"s3://releases/app\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n",
    ))
    .unwrap();
    assert!(plan.upload.unwrap().allow_http);
    parse(&upload(
        "url = \"s3://releases/app\"\nendpoint = \"https://s3.example\"\n",
    ))
    .unwrap();
}

#[test]
fn sinks_carry_what_their_type_needs() {
    let pinned = format!("oci:base:bookworm@{DIGEST}");
    let with_sinks = |sinks: &str| format!("{}\n{sinks}", config("1.0", "[\"amd64\"]", &pinned));
    let plan = parse(&with_sinks(
        "[[sinks]]\ntype = \"file\"\npath = \"events/all.jsonl\"\n\n[[sinks]]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\nauthorization = \"env:HOOK_TOKEN\"\nrequired = true\n",
    ))
    .unwrap();
    assert_eq!(
        plan.sinks[0].destination,
        SinkDestination::File(PathBuf::from("/project/events/all.jsonl"))
    );
    assert!(!plan.sinks[0].required);
    assert_eq!(
        plan.sinks[1].destination,
        SinkDestination::Webhook {
            url: "https://hooks.example.com/x".into(),
            authorization: Some("env:HOOK_TOKEN".into()),
        }
    );
    assert!(plan.sinks[1].required);

    let (line, message) = error_of(&with_sinks("[[sinks]]\ntype = \"loki\"\n"));
    assert_eq!(line, 11, "{message}");
    assert!(message.contains("needs `url`"), "{message}");
    let (_, message) = error_of(&with_sinks("[[sinks]]\ntype = \"carrier-pigeon\"\n"));
    assert!(message.contains("sinks.type"), "{message}");
    let (_, message) = error_of(&with_sinks(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x\"\nauthorization = \"Bearer abc\"\n",
    ));
    assert!(message.contains("secret reference"), "{message}");
}
