//! `$VAR` and `${VAR}` expansion as container-structure-test applies it
//! (Go's `os.Expand`): unset names become empty, a `$` not followed by a
//! name stays as it is.

use std::collections::BTreeMap;

/// `text` with every variable of `env` substituted.
pub(crate) fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'$' || index + 1 >= bytes.len() {
            index += 1;
            continue;
        }
        let rest = &text[index + 1..];
        let (name, consumed) = shell_name(rest);
        if consumed == 0 {
            index += 1;
            continue;
        }
        out.push_str(&text[start..index]);
        if let Some(name) = name {
            out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
        }
        index += 1 + consumed;
        start = index;
    }
    out.push_str(&text[start..]);
    out
}

fn special(byte: u8) -> bool {
    matches!(byte, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || byte.is_ascii_digit()
}

fn name_byte(byte: u8) -> bool {
    byte == b'_' || byte.is_ascii_alphanumeric()
}

/// The variable name at the start of `rest` and how many bytes it takes;
/// `(None, n)` for a malformed `${…`, which is dropped as Go drops it.
fn shell_name(rest: &str) -> (Option<&str>, usize) {
    let bytes = rest.as_bytes();
    if bytes[0] == b'{' {
        if bytes.len() > 2 && special(bytes[1]) && bytes[2] == b'}' {
            return (Some(&rest[1..2]), 3);
        }
        return match rest.find('}') {
            Some(1) => (None, 2),
            Some(end) => (Some(&rest[1..end]), end + 1),
            None => (None, 1),
        };
    }
    if special(bytes[0]) {
        return (Some(&rest[..1]), 1);
    }
    let length = bytes.iter().take_while(|byte| name_byte(**byte)).count();
    (
        Some(&rest[..length]).filter(|name| !name.is_empty()),
        length,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_as_go_does() {
        let env = BTreeMap::from([
            ("HOME".to_owned(), "/home/app".to_owned()),
            ("A_1".to_owned(), "x".to_owned()),
        ]);
        for (text, expected) in [
            ("$HOME/bin", "/home/app/bin"),
            ("${HOME}/bin", "/home/app/bin"),
            ("$A_1-$MISSING.", "x-."),
            ("cost $5 and $ alone", "cost  and $ alone"),
            ("trailing $", "trailing $"),
            ("${}", ""),
            ("${HOME", "HOME"),
            ("/a/$/b", "/a/$/b"),
        ] {
            assert_eq!(expand(text, &env), expected, "{text}");
        }
    }
}
