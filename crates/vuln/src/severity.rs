//! Severity levels from CVSS v3.x vectors (base score computed), GHSA's
//! `database_specific.severity` and Debian's urgency.

use serde::Serialize;

use crate::osv::Advisory;

/// Severity levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No data.
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Parses `LOW`, `MEDIUM`, `MODERATE`, `HIGH`, `CRITICAL` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => Self::Unknown,
            "LOW" => Self::Low,
            "MEDIUM" | "MODERATE" => Self::Medium,
            "HIGH" => Self::High,
            "CRITICAL" => Self::Critical,
            _ => return None,
        })
    }

    /// The level of a CVSS base score (the CVSS v3 qualitative scale).
    pub fn from_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::Unknown,
        }
    }

    /// The upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }
}

/// CVSS v3 "round up" to one decimal, as the specification defines it.
fn round_up(value: f64) -> f64 {
    let integer = (value * 100_000.0).round() as i64;
    if integer % 10_000 == 0 {
        integer as f64 / 100_000.0
    } else {
        ((integer / 10_000) + 1) as f64 / 10.0
    }
}

/// The base score of a CVSS v3.0/v3.1 vector, `None` when the vector is malformed.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let rest = vector
        .strip_prefix("CVSS:3.1/")
        .or_else(|| vector.strip_prefix("CVSS:3.0/"))?;
    let mut metrics = std::collections::HashMap::new();
    for part in rest.split('/') {
        let (key, value) = part.split_once(':')?;
        metrics.insert(key, value);
    }
    let get = |key: &str| metrics.get(key).copied();
    let scope_changed = get("S")? == "C";
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let impact_value = |key: &str| -> Option<f64> {
        Some(match get(key)? {
            "H" => 0.56,
            "L" => 0.22,
            "N" => 0.0,
            _ => return None,
        })
    };
    let (c, i, a) = (impact_value("C")?, impact_value("I")?, impact_value("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    Some(if scope_changed {
        round_up((1.08 * (impact + exploitability)).min(10.0))
    } else {
        round_up((impact + exploitability).min(10.0))
    })
}

/// The base score of a CVSS v4.0 vector, `None` when the vector is malformed.
pub fn cvss4_base_score(vector: &str) -> Option<f64> {
    let parsed: cvss::v4::Vector = vector.parse().ok()?;
    Some(parsed.score().value())
}

/// The severity of an advisory: the highest of its CVSS v3 and v4 scores, else
/// GHSA's label, else Debian's urgency; `UNKNOWN` without data.
pub fn of_advisory(advisory: &Advisory) -> (Severity, Option<f64>) {
    let mut best: Option<f64> = None;
    let entries = advisory.severity.iter().chain(
        advisory
            .affected
            .iter()
            .flat_map(|affected| affected.severity.iter()),
    );
    for entry in entries {
        let score = match entry.kind.as_str() {
            "CVSS_V3" => cvss3_base_score(&entry.score),
            "CVSS_V4" => cvss4_base_score(&entry.score),
            _ => None,
        };
        if let Some(score) = score {
            best = Some(best.map_or(score, |current: f64| current.max(score)));
        }
    }
    if let Some(score) = best {
        return (Severity::from_score(score), Some(score));
    }
    let labelled = advisory
        .database_specific
        .as_ref()
        .and_then(|specific| specific.get("severity"))
        .and_then(serde_json::Value::as_str)
        .and_then(Severity::parse);
    if let Some(severity) = labelled {
        return (severity, None);
    }
    let urgency = advisory
        .affected
        .iter()
        .filter_map(|affected| {
            affected
                .ecosystem_specific
                .as_ref()?
                .get("urgency")?
                .as_str()
        })
        .filter_map(|urgency| match urgency.trim_end_matches('*') {
            "unimportant" | "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        })
        .max();
    (urgency.unwrap_or(Severity::Unknown), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_scores_match_the_specification_examples() {
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ];
        for (vector, expected) in cases {
            assert_eq!(cvss3_base_score(vector), Some(expected), "{vector}");
        }
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X"), None);
        assert_eq!(cvss3_base_score("not a vector"), None);
        assert_eq!(Severity::from_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_score(6.1), Severity::Medium);
        assert_eq!(Severity::parse("moderate"), Some(Severity::Medium));
    }

    #[test]
    fn cvss4_scores_come_out_of_the_specification_tables() {
        let cases = [
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
        ];
        for (vector, expected) in cases {
            assert_eq!(cvss4_base_score(vector), Some(expected), "{vector}");
        }
        assert_eq!(cvss4_base_score("CVSS:4.0/AV:Q"), None);
        let advisory: crate::osv::Advisory = serde_json::from_str(r#"{"id":"X-1","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}"#).unwrap();
        assert_eq!(of_advisory(&advisory), (Severity::Critical, Some(9.3)));
        let labelled: crate::osv::Advisory =
            serde_json::from_str(r#"{"id":"GHSA-1","database_specific":{"severity":"MODERATE"}}"#)
                .unwrap();
        assert_eq!(of_advisory(&labelled), (Severity::Medium, None));
        let debian: crate::osv::Advisory = serde_json::from_str(r#"{"id":"DEBIAN-1","affected":[{"package":{"ecosystem":"Debian:12","name":"x"},"ecosystem_specific":{"urgency":"high"}}]}"#).unwrap();
        assert_eq!(of_advisory(&debian), (Severity::High, None));
        assert_eq!(
            of_advisory(&serde_json::from_str(r#"{"id":"NONE-1"}"#).unwrap()),
            (Severity::Unknown, None)
        );
    }
}
