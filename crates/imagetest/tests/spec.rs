//! Spec files: every documented field of both schemas parses into the model,
//! and mistakes are refused with where they are.

use std::path::Path;

use sealcraft_imagetest::TestFile;

const EVERY_FIELD: &str = r#"
schemaVersion: "2.0.0"
globalEnvVars:
  - {key: A, value: b}
commandTests:
  - name: c
    setup: [["touch", "/x"]]
    teardown: [["rm", "/x"]]
    envVars: [{key: K, value: v, isRegex: false}]
    command: echo
    args: ["$A"]
    exitCode: 3
    expectedOutput: ["o"]
    excludedOutput: ["x"]
    expectedError: ["e"]
    excludedError: ["y"]
fileExistenceTests:
  - {name: f, path: /f, shouldExist: true, permissions: "-rw-r--r--", uid: 0, gid: 0, isExecutableBy: any}
fileContentTests:
  - {name: g, path: /g, expectedContents: ["a"], excludedContents: ["b"]}
metadataTest:
  envVars: [{key: E, value: "^v", isRegex: true}]
  unboundEnvVars: [{key: U}]
  exposedPorts: ["80"]
  unexposedPorts: ["81"]
  entrypoint: ["/e"]
  cmd: []
  workdir: /w
  volumes: ["/v"]
  unmountedVolumes: ["/u"]
  labels: [{key: l, value: "1", isRegex: false}]
  user: app
  stopSignal: SIGINT
  healthcheck: {test: ["CMD", "true"], interval: 30s, timeout: 1m30s, startPeriod: 500ms, retries: 3}
  shell: ["/bin/sh", "-c"]
  onBuild: []
licenseTests:
  - {debian: true, files: ["/l"]}
containerRunOptions:
  user: "1000:1000"
  privileged: false
  allocateTty: false
  envVars: ["HOST_VAR"]
  envFile: /env
  capabilities: ["NET_ADMIN", "CAP_SYS_TIME"]
  bindMounts: ["/host:/ctr:ro", "/a:/b"]
sealcraft:
  network: host
  readOnlyRoot: true
  serviceTests:
    - name: s
      envVars: [{key: P, value: "1"}]
      args: ["--serve"]
      ready: {http: {port: 8080, path: /health, status: 204}, timeout: 5}
      stop: {signal: SIGINT, within: 3, exitCode: 130}
      readOnlyRoot: true
      healthcheck: true
"#;

#[test]
fn every_documented_field_of_schema_2_parses() {
    let file = TestFile::parse(EVERY_FIELD, Path::new("every.yaml")).unwrap();
    let command = &file.command_tests[0];
    assert_eq!(
        (command.exit_code, command.args.as_slice()),
        (3, &["$A".to_owned()][..])
    );
    assert_eq!(command.setup, [["touch", "/x"]]);
    let existence = &file.file_existence_tests[0];
    assert_eq!(existence.is_executable_by.as_deref(), Some("any"));
    assert_eq!((existence.uid, existence.gid), (Some(0), Some(0)));
    let metadata = file.metadata_test.as_ref().unwrap();
    assert_eq!(metadata.cmd.as_deref(), Some(&[][..]));
    assert_eq!(metadata.healthcheck.as_ref().unwrap().retries, Some(3));
    assert!(metadata.env_vars[0].is_regex);
    let options = file.container_run_options.as_ref().unwrap();
    assert_eq!(options.bind_mounts.len(), 2);
    assert_eq!(file.sealcraft.network.as_deref(), Some("host"));
    let service = &file.sealcraft.service_tests[0];
    assert_eq!(service.stop.as_ref().unwrap().exit_code, Some(130));
    assert_eq!(
        service
            .ready
            .as_ref()
            .unwrap()
            .http
            .as_ref()
            .unwrap()
            .status,
        Some(204)
    );
    assert_eq!(file.host_env_names(), ["HOST_VAR"]);
}

#[test]
fn schema_1_takes_the_whole_argv_as_command() {
    let file = TestFile::parse(
        "schemaVersion: 1.0.0\ncommandTests:\n  - name: v1\n    command: [\"echo\", \"a\", \"b\"]\n    expectedOutput: [\"a b\"]\nfileExistenceTests:\n  - {name: f, path: /f, shouldExist: false, permissions: drwxr-xr-x}\n",
        Path::new("v1.yaml"),
    )
    .unwrap();
    assert_eq!(file.command_tests[0].command, "echo");
    assert_eq!(file.command_tests[0].args, ["a", "b"]);
    assert!(!file.file_existence_tests[0].should_exist);
    // Defaults: shouldExist is true unless said.
    let file = TestFile::parse(
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: f, path: /f}\n",
        Path::new("d.yaml"),
    )
    .unwrap();
    assert!(file.file_existence_tests[0].should_exist);
}

#[test]
fn mistakes_are_refused_with_their_place() {
    for (text, needle) in [
        (
            "schemaVersion: 2.0.0\nmetadataTest:\n  exposedPorts: [\"80\"]\n  user: app\n  entrypont: []\n",
            "every.yaml:5:3: metadataTest: unknown field `entrypont`",
        ),
        (
            "schemaVersion: 2.0.0\nsealcraft:\n  serviceTests:\n    - name: s\n      ready: {tcp: 1, http: {port: 2}}\n",
            "ready needs exactly one of tcp and http",
        ),
        (
            "schemaVersion: 2.0.0\ncontainerRunOptions:\n  bindMounts: [\"relative:/x\"]\n",
            "is not host:container[:ro]",
        ),
        (
            "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: f, path: /f, isExecutableBy: everyone}\n",
            "it takes owner, group, other or any",
        ),
        (
            "schemaVersion: 2.0.0\ncommandTests:\n  - {name: c, command: echo, envVars: [{key: K}]}\n",
            "variable K has no value",
        ),
        (
            "schemaVersion: 2.0.0\nmetadataTest:\n  healthcheck: {interval: soon}\n",
            "healthcheck duration \"soon\"",
        ),
        (
            "schemaVersion: 2.0.0\nsealcraft:\n  network: bridge\n",
            "it takes none or host",
        ),
    ] {
        let error = TestFile::parse(text, Path::new("every.yaml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(needle), "{error} lacks {needle}");
    }
}
