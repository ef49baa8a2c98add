//! Regular expressions against output and file contents, unanchored as
//! container-structure-test matches them; failures quote what was there.

use regex::Regex;

/// How much of the searched text a failure quotes.
const QUOTE_LIMIT: usize = 2000;

fn quote(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return format!("{text:?}");
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &text[..end], text.len())
}

fn matches(pattern: &str, text: &str) -> Result<bool, String> {
    Regex::new(pattern)
        .map(|regex| regex.is_match(text))
        .map_err(|error| format!("bad regular expression {pattern:?}: {error}"))
}

/// Errors for every pattern that does not match `text` (`what` names it).
pub(crate) fn expected(patterns: &[String], text: &str, what: &str) -> Vec<String> {
    patterns
        .iter()
        .filter_map(|pattern| match matches(pattern, text) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "expected {pattern:?} in {what}, which was {}",
                quote(text)
            )),
            Err(error) => Some(error),
        })
        .collect()
}

/// Errors for every pattern that matches `text`.
pub(crate) fn excluded(patterns: &[String], text: &str, what: &str) -> Vec<String> {
    patterns
        .iter()
        .filter_map(|pattern| match matches(pattern, text) {
            Ok(false) => None,
            Ok(true) => Some(format!(
                "excluded {pattern:?} found in {what}, which was {}",
                quote(text)
            )),
            Err(error) => Some(error),
        })
        .collect()
}
