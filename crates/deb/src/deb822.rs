//! Control-file paragraphs (deb822): `Field: value` lines, continuation
//! lines starting with white space, paragraphs separated by blank lines.
//!
//! Paragraphs are kept losslessly (field order, the exact text of every
//! value and its continuation lines), so a database rewritten with one
//! paragraph changed leaves every other byte as it was.

/// One paragraph: its fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// A paragraph with `fields` in this order.
    pub fn from_fields(fields: Vec<(String, String)>) -> Self {
        Self { fields }
    }

    /// The value of `name` (case-insensitive), as written after the colon:
    /// the first line trimmed, continuation lines kept with their leading space.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first line of `name`'s value, trimmed; `None` when absent or empty.
    pub fn single(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(|value| value.lines().next().unwrap_or("").trim())
            .filter(|value| !value.is_empty())
    }

    /// Sets `name` to `value`, in place when present, at the end otherwise.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
        {
            Some((_, existing)) => *existing = value,
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    /// Sets `name` to `value` right after the field `after` (or at the end).
    pub fn insert_after(&mut self, after: &str, name: &str, value: impl Into<String>) {
        self.remove(name);
        let position = self
            .fields
            .iter()
            .position(|(field, _)| field.eq_ignore_ascii_case(after))
            .map_or(self.fields.len(), |index| index + 1);
        self.fields
            .insert(position, (name.to_owned(), value.into()));
    }

    /// Removes `name`; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields
            .retain(|(field, _)| !field.eq_ignore_ascii_case(name));
        self.fields.len() != before
    }

    /// The fields in order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The paragraph as text, every line ending in a newline.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.fields {
            text.push_str(name);
            text.push(':');
            // Values that start on the next line (Conffiles, Description's body) keep that form.
            if !value.is_empty() && !value.starts_with('\n') {
                text.push(' ');
            }
            text.push_str(value);
            text.push('\n');
        }
        text
    }
}

/// Parses paragraphs: comment lines (`#`) are skipped, lines that are not
/// fields or continuations are ignored (dpkg refuses them; readers of
/// images must not stop at one damaged stanza).
pub fn parse(text: &str) -> Vec<Paragraph> {
    parse_selected(text, |_| true)
}

/// Like [`parse`], keeping only the fields `keep` accepts (with their
/// continuation lines): for large indexes of which a reader needs a few
/// fields, it saves building every `Description`. A paragraph whose fields
/// were all dropped is still returned, empty.
pub fn parse_selected(text: &str, keep: impl Fn(&str) -> bool) -> Vec<Paragraph> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    let mut in_paragraph = false;
    let mut keeping = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if in_paragraph {
                paragraphs.push(Paragraph {
                    fields: std::mem::take(&mut current),
                });
            }
            in_paragraph = false;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if keeping && let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            in_paragraph = true;
            let name = name.trim();
            keeping = keep(name);
            if keeping {
                current.push((name.to_owned(), value.trim().to_owned()));
            }
        }
    }
    if in_paragraph {
        paragraphs.push(Paragraph { fields: current });
    }
    paragraphs
}

/// Paragraphs as text, separated by blank lines.
pub fn to_text(paragraphs: &[Paragraph]) -> String {
    paragraphs
        .iter()
        .map(Paragraph::to_text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.17-1~deb12u2\nDescription: Secure Sockets Layer toolkit\n This package is part of OpenSSL.\n .\n More text.\nHomepage: https://www.openssl.org/\n\nPackage: base-files\nConffiles:\n /etc/debian_version 1234 \n /etc/issue abcd\nVersion: 12.4\n";

    #[test]
    fn paragraphs_round_trip_byte_for_byte() {
        let paragraphs = parse(STATUS);
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].single("package"), Some("libssl3"));
        assert_eq!(
            paragraphs[0].get("Description"),
            Some(
                "Secure Sockets Layer toolkit\n This package is part of OpenSSL.\n .\n More text."
            )
        );
        assert_eq!(
            paragraphs[1].get("Conffiles"),
            Some("\n /etc/debian_version 1234 \n /etc/issue abcd")
        );
        assert_eq!(to_text(&paragraphs), STATUS);
    }

    #[test]
    fn fields_are_set_in_place_or_appended() {
        let mut paragraph = parse("Package: a\nVersion: 1\nDepends: b\n").remove(0);
        paragraph.set("version", "2");
        paragraph.set("Multi-Arch", "same");
        paragraph.insert_after("Package", "Status", "install ok installed");
        assert!(paragraph.remove("Depends"));
        assert!(!paragraph.remove("Depends"));
        assert_eq!(
            paragraph.to_text(),
            "Package: a\nStatus: install ok installed\nVersion: 2\nMulti-Arch: same\n"
        );
    }

    #[test]
    fn comments_and_noise_are_skipped() {
        let paragraphs =
            parse("# a comment\nTypes: deb\nnot a field\nURIs: http://x\n\n\n\nTypes: deb-src\n");
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].single("URIs"), Some("http://x"));
    }
}
