//! The crate graph follows the layer table of docs/ARCHITECTURE.md: every
//! workspace crate is in the table, and each depends only on crates of
//! lower layers (development dependencies are not part of the graph).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `crate → layer` from the table rows `| L3 facts | `inventory` | … |`.
fn layers() -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(layer) = cells[1]
            .strip_prefix('L')
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(name) = cells[2]
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue;
        };
        let package = if name == "sealcraft" {
            name.to_owned()
        } else {
            format!("sealcraft-{name}")
        };
        assert!(
            layers.insert(package.clone(), layer).is_none(),
            "{package} is in the table twice"
        );
    }
    layers
}

/// `crate → the internal crates its "depends on" cell names`, for cells that
/// name crates in backticks; `None` for cells that name none ("nothing
/// internal", external crates only) or say "every crate above".
fn documented_dependencies() -> BTreeMap<String, Option<Vec<String>>> {
    let text = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let mut documented = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !cells[1].starts_with('L') {
            continue;
        }
        let Some(name) = cells[2]
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue;
        };
        let cell = cells[4];
        let named: Vec<String> = cell
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|crate_name| format!("sealcraft-{crate_name}"))
            .collect();
        let package = if name == "sealcraft" {
            name.to_owned()
        } else {
            format!("sealcraft-{name}")
        };
        let entry = if cell.starts_with("every") {
            None
        } else {
            let mut named = named;
            named.sort();
            Some(named)
        };
        documented.insert(package, entry);
    }
    documented
}

/// Every workspace package with its internal normal and build dependencies.
fn graph() -> BTreeMap<String, Vec<String>> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut graph = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_owned();
        if !name.starts_with("sealcraft") {
            continue;
        }
        let dependencies = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dependency| dependency["kind"].as_str() != Some("dev"))
            .filter_map(|dependency| dependency["name"].as_str())
            .filter(|dependency| dependency.starts_with("sealcraft"))
            .map(str::to_owned)
            .collect();
        graph.insert(name, dependencies);
    }
    graph
}

/// Edges that do not point to a lower layer.
fn violations(
    layers: &BTreeMap<String, u32>,
    graph: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (package, dependencies) in graph {
        for dependency in dependencies {
            if layers[dependency] >= layers[package] {
                violations.push(format!(
                    "{package} (L{}) depends on {dependency} (L{})",
                    layers[package], layers[dependency]
                ));
            }
        }
    }
    violations
}

#[test]
fn every_crate_depends_only_on_lower_layers() {
    let layers = layers();
    let graph = graph();
    assert!(
        graph.len() > 10,
        "cargo metadata named too few crates: {graph:?}"
    );
    let missing: Vec<&String> = graph
        .keys()
        .filter(|name| !layers.contains_key(*name))
        .collect();
    assert!(missing.is_empty(), "not in the layer table: {missing:?}");
    let stale: Vec<&String> = layers
        .keys()
        .filter(|name| !graph.contains_key(*name))
        .collect();
    assert!(
        stale.is_empty(),
        "in the layer table but not in the workspace: {stale:?}"
    );
    let found = violations(&layers, &graph);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_table_names_each_crate_s_real_dependencies() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (package, documented) in documented_dependencies() {
        let Some(documented) = documented else {
            continue;
        };
        let mut actual = graph.get(&package).cloned().unwrap_or_default();
        actual.sort();
        actual.dedup();
        if actual != documented {
            wrong.push(format!(
                "{package}: the table says {documented:?}, Cargo.toml says {actual:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn same_layer_and_upward_edges_are_violations() {
    let layers = BTreeMap::from([
        ("low".to_owned(), 0),
        ("mid".to_owned(), 1),
        ("peer".to_owned(), 1),
    ]);
    let graph = BTreeMap::from([
        ("mid".to_owned(), vec!["low".to_owned(), "peer".to_owned()]),
        ("low".to_owned(), vec!["mid".to_owned()]),
        ("peer".to_owned(), vec![]),
    ]);
    assert_eq!(
        violations(&layers, &graph),
        [
            "low (L0) depends on mid (L1)",
            "mid (L1) depends on peer (L1)"
        ]
    );
}
