//! The 157 real advisories against both fixture inventories: the matches
//! must equal the independently computed expected-matches.json exactly.

use std::collections::BTreeSet;
use std::path::Path;

use sealcraft_inventory::{Inventory, Limits, ViewSource, catalog};
use sealcraft_oci::image::{Image, ImageName, LayerOptions};
use sealcraft_oci::import::{ImportOptions, import};
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::view::MergedView;
use sealcraft_vuln::AdvisoryCode;
use sealcraft_vuln::osv::{Database, scan};

fn data(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn inventory(name: &str) -> Inventory {
    let tarball = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../inventory/tests/data")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let options = ImportOptions {
        architecture: Some("amd64".into()),
        layer: LayerOptions::default(),
        limits: LayerLimits::default(),
    };
    import(
        &ImageName::Rootfs { path: tarball },
        &layout,
        "fixture",
        &options,
    )
    .unwrap();
    let image = Image::load(&layout, Some("fixture"), None).unwrap();
    let view = MergedView::from_image(
        &layout,
        &image.manifest,
        &image.config,
        &LayerLimits::default(),
    )
    .unwrap();
    catalog(&ViewSource(&view), &Limits::default())
}

fn expected(inventory: &str) -> BTreeSet<(String, String)> {
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("expected-matches.json")).unwrap()).unwrap();
    let mut set = BTreeSet::new();
    for (id, advisory) in document["advisories"].as_object().unwrap() {
        for matched in advisory["matches"][inventory]
            .as_array()
            .into_iter()
            .flatten()
        {
            set.insert((id.clone(), matched["package"].as_str().unwrap().to_owned()));
        }
    }
    set
}

#[test]
fn matches_equal_the_ground_truth_for_both_inventories() {
    let (database, warnings) = Database::load_dir(&data("osv")).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(database.len(), 157);
    for (inventory_name, tarball, advisories, matches) in [
        ("current", "bookworm-current.tar.gz", 42, 75),
        ("aged", "bookworm-aged.tar.gz", 89, 164),
    ] {
        let (findings, warnings) = scan(&inventory(tarball), &database);
        assert!(warnings.is_empty(), "{inventory_name}: {warnings:#?}");
        let expected = expected(inventory_name);
        // A finding stands for its record and for the records it merged (named among its aliases).
        let record_ids: BTreeSet<&String> = expected.iter().map(|(id, _)| id).collect();
        let found: BTreeSet<(String, String)> = findings
            .iter()
            .flat_map(|finding| {
                std::iter::once(&finding.id)
                    .chain(
                        finding
                            .aliases
                            .iter()
                            .filter(|alias| record_ids.contains(alias)),
                    )
                    .map(|id| (id.clone(), finding.package.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let merged = findings
            .iter()
            .filter(|finding| {
                finding
                    .aliases
                    .iter()
                    .any(|alias| record_ids.contains(alias))
            })
            .count();
        assert!(findings.len() + merged >= found.len());
        assert_eq!(
            found.difference(&expected).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "{inventory_name}: found but not expected"
        );
        assert_eq!(
            expected.difference(&found).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "{inventory_name}: expected but not found"
        );
        assert_eq!(found.len(), matches, "{inventory_name}");
        assert_eq!(
            found
                .iter()
                .map(|(id, _)| id)
                .collect::<BTreeSet<_>>()
                .len(),
            advisories,
            "{inventory_name}"
        );
    }
}

#[test]
fn malformed_records_are_named_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad-json.json"), b"{ not json").unwrap();
    std::fs::write(
        dir.path().join("odd.json"),
        br#"{"id":"ODD-1","affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"WEIRD","events":[{"introduced":"0"}]},{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"not a version!!"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("good.json"), br#"{"id":"GOOD-1","affected":[{"package":{"ecosystem":"PyPI","name":"Requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.32.0"}]}]}]}"#).unwrap();
    let (records, warnings) = sealcraft_vuln::store::read_source(dir.path()).unwrap();
    assert_eq!(records.len(), 2);
    let codes: Vec<(AdvisoryCode, &str)> = warnings
        .iter()
        .map(|warning| (warning.code, warning.subject.as_str()))
        .collect();
    assert!(
        codes
            .iter()
            .any(|(code, record)| *code == AdvisoryCode::MalformedRecord
                && record.ends_with("bad-json.json")),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|(code, record)| *code == AdvisoryCode::UnknownRangeType && *record == "ODD-1"),
        "{codes:?}"
    );

    let inventory = sealcraft_sbom::read(br#"{"bomFormat":"CycloneDX","components":[{"name":"requests","version":"2.31.0","purl":"pkg:pypi/requests@2.31.0"}]}"#).unwrap();
    let (findings, warnings) = scan(&inventory, &Database::new(records));
    assert_eq!(
        findings
            .iter()
            .map(|finding| finding.id.as_str())
            .collect::<Vec<_>>(),
        vec!["GOOD-1"]
    );
    assert_eq!(findings[0].fixed_version.as_deref(), Some("2.32.0"));
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].code, warnings[0].subject.as_str()),
        (AdvisoryCode::UnparsableVersion, "ODD-1")
    );
}
