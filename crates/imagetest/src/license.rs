//! License tests: Debian copyright files and listed files searched for
//! the licenses container-structure-test refuses (AGPL, WTFPL).

use std::time::Instant;

use sealcraft_oci::layer::EntryKind;
use sealcraft_oci::view::MergedView;

use crate::report::TestResult;
use crate::spec::LicenseTest;

const REFUSED: [&str; 2] = ["AGPL", "WTFPL"];

/// Packages whose copyright files mention a refused license without being under it.
const ALLOWED_PACKAGES: [&str; 1] = ["libgnutls30"];

fn check_file(view: &MergedView, path: &str, errors: &mut Vec<String>) {
    match view.read(path) {
        Err(error) => errors.push(format!("cannot read the license file {path}: {error}")),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).to_uppercase();
            if let Some(license) = REFUSED.iter().find(|license| text.contains(*license)) {
                errors.push(format!("{path} names the license {license}"));
            }
        }
    }
}

/// Runs one license test.
pub(crate) fn check(view: &MergedView, test: &LicenseTest) -> TestResult {
    let started = Instant::now();
    let mut errors = Vec::new();
    if test.debian {
        let doc = std::path::Path::new("usr/share/doc");
        let real = view
            .resolve(doc)
            .filter(|(_, node)| node.meta.kind == EntryKind::Directory)
            .map(|(real, _)| real);
        if real.is_none() {
            // Nothing to read is no evidence of compliance.
            errors.push("debian is set but the image has no /usr/share/doc directory".into());
        }
        if let Some(real) = real {
            let packages: Vec<String> = view
                .under(&real)
                .filter(|(path, node)| {
                    path.parent() == Some(real.as_path()) && node.meta.kind == EntryKind::Directory
                })
                .filter_map(|(path, _)| {
                    path.file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                })
                .collect();
            for package in packages {
                if ALLOWED_PACKAGES.contains(&package.as_str()) {
                    continue;
                }
                check_file(
                    view,
                    &format!("/usr/share/doc/{package}/copyright"),
                    &mut errors,
                );
            }
        }
    }
    for file in &test.files {
        check_file(view, file, &mut errors);
    }
    TestResult::new("License Test", errors, started.elapsed())
}
