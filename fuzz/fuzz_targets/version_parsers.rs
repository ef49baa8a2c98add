//! Every version parser and comparison on arbitrary text: no panic, and the
//! orderings stay antisymmetric.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealcraft_vuln::version::{compare_rpm, parse_apk, parse_debian, parse_pep440, parse_semver};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, "1.0"));
    if let (Ok(x), Ok(y)) = (parse_debian(a), parse_debian(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
    }
    if let (Ok(x), Ok(y)) = (parse_apk(a), parse_apk(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
    }
    if let (Ok(x), Ok(y)) = (parse_pep440(a), parse_pep440(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
    }
    if let (Ok(x), Ok(y)) = (parse_semver(a), parse_semver(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
    }
    assert_eq!(compare_rpm(a, b), compare_rpm(b, a).reverse());
});
