//! The operating system, from os-release.

use std::path::Path;

use serde::Serialize;

use crate::FileSource;

/// The fields of os-release that SBOMs and scanners use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID` (debian, alpine, …).
    pub id: String,
    /// `VERSION_ID` (12, 3.20.1, …).
    pub version_id: String,
    /// `VERSION_CODENAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// The full version where the distribution records one (Debian's /etc/debian_version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_version: Option<String>,
}

impl OsRelease {
    /// `<id>-<major>` as purls name a distribution (`debian-12`, `alpine-3.20`).
    pub fn purl_distro(&self) -> String {
        let major = if self.id == "alpine" {
            self.version_id
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join(".")
        } else {
            self.version_id.split('.').next().unwrap_or("").to_owned()
        };
        format!("{}-{major}", self.id)
    }
}

/// Parses `KEY=value` lines with optional quotes.
pub(crate) fn parse(text: &str) -> Option<OsRelease> {
    let mut fields = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        fields.insert(key.trim().to_owned(), value.to_owned());
    }
    Some(OsRelease {
        id: fields.get("ID")?.clone(),
        version_id: fields.get("VERSION_ID").cloned().unwrap_or_default(),
        codename: fields.get("VERSION_CODENAME").cloned(),
        pretty_name: fields.get("PRETTY_NAME").cloned(),
        full_version: None,
    })
}

pub(crate) fn read(source: &dyn FileSource) -> Option<OsRelease> {
    let text = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|path| source.read(Path::new(path), 64 << 10).ok())?;
    let mut release = parse(&String::from_utf8_lossy(&text))?;
    if release.id == "debian"
        && let Ok(version) = source.read(Path::new("etc/debian_version"), 256)
    {
        let version = String::from_utf8_lossy(&version).trim().to_owned();
        if version.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            release.full_version = Some(version);
        }
    }
    Some(release)
}
