//! Finding codes are data users build on (allowlists, CI filters): each is
//! kebab-case, described, unique across every domain, and the whole list is
//! a reviewed snapshot, so renaming or dropping a code shows as a diff.

use std::collections::BTreeMap;

use sealcraft_findings::{Code, check_codes, listing};
use sealcraft_imagetest::SecurityCode;
use sealcraft_inventory::InventoryCode;
use sealcraft_vuln::AdvisoryCode;

fn domain<C: Code>(all: &mut BTreeMap<&'static str, &'static str>, lines: &mut Vec<String>) {
    check_codes::<C>().unwrap();
    for (code, description) in listing::<C>() {
        if let Some(other) = all.insert(code, C::DOMAIN) {
            panic!("{code} is used by {other} and {}", C::DOMAIN);
        }
        lines.push(format!("{:<12} {code:<32} {description}", C::DOMAIN));
    }
}

#[test]
fn codes_are_unique_across_domains_and_stable() {
    let mut all = BTreeMap::new();
    let mut lines = Vec::new();
    domain::<InventoryCode>(&mut all, &mut lines);
    domain::<AdvisoryCode>(&mut all, &mut lines);
    domain::<SecurityCode>(&mut all, &mut lines);
    insta::assert_snapshot!("codes", lines.join("\n"));
}
