//! What a test run found, and its three renderings: text like a test
//! runner's, JSON with container-structure-test's field names (plus the
//! image and what was kept of a failure), and JUnit XML.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::security::SecurityCode;

/// One test's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// `Command Test: …`, `File Existence Test: …`, `Metadata Test`, `Security Test: …`.
    #[serde(rename = "Name")]
    pub name: String,
    /// Whether it passed.
    #[serde(rename = "Pass")]
    pub pass: bool,
    /// The command's stdout.
    #[serde(rename = "Stdout", skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    /// The command's stderr.
    #[serde(rename = "Stderr", skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// What was expected and what was found, one line per problem.
    #[serde(rename = "Errors", skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Nanoseconds.
    #[serde(rename = "Duration", serialize_with = "nanoseconds")]
    pub duration: Duration,
    /// The spec file it came from (none for built-in suites).
    #[serde(rename = "File", skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The security check's stable code.
    #[serde(rename = "Code", skip_serializing_if = "Option::is_none")]
    pub code: Option<SecurityCode>,
}

impl TestResult {
    /// A result named `name` with `errors` (passing when there are none).
    pub fn new(name: impl Into<String>, errors: Vec<String>, duration: Duration) -> Self {
        Self {
            name: name.into(),
            pass: errors.is_empty(),
            stdout: String::new(),
            stderr: String::new(),
            errors,
            duration,
            file: None,
            code: None,
        }
    }
}

fn nanoseconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

/// What was kept of a failed image for debugging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptFailure {
    /// The tag the image got in its layout (`…-failed`).
    #[serde(rename = "Tag")]
    pub tag: String,
    /// A runc bundle of the image (rootfs and config.json) when commands ran.
    #[serde(rename = "Bundle", skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
}

/// Every result of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Passed tests.
    #[serde(rename = "Pass")]
    pub pass: usize,
    /// Failed tests.
    #[serde(rename = "Fail")]
    pub fail: usize,
    /// All tests run.
    #[serde(rename = "Total")]
    pub total: usize,
    /// Nanoseconds for the whole run.
    #[serde(rename = "Duration", serialize_with = "nanoseconds")]
    pub duration: Duration,
    /// The image tested.
    #[serde(rename = "Image")]
    pub image: String,
    /// Its manifest digest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Tests left out after the first failure (`--fail-fast`).
    #[serde(rename = "Skipped", skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// What was kept of a failure.
    #[serde(rename = "Kept", skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptFailure>,
    /// The results, in the order they ran.
    #[serde(rename = "Results", skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TestResult>,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl Report {
    /// A report of `results`.
    pub fn new(
        image: String,
        digest: String,
        results: Vec<TestResult>,
        duration: Duration,
    ) -> Self {
        let pass = results.iter().filter(|result| result.pass).count();
        Self {
            pass,
            fail: results.len() - pass,
            total: results.len(),
            duration,
            image,
            digest,
            skipped: 0,
            kept: None,
            results,
        }
    }

    /// Whether every test passed (and at least one ran).
    pub fn passed(&self) -> bool {
        self.fail == 0 && self.total > 0
    }

    /// The human report: one block per test, then the totals.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let _ = writeln!(out, "=== RUN: {}", result.name);
            let _ = writeln!(
                out,
                "--- {} ({})",
                if result.pass { "PASS" } else { "FAIL" },
                seconds(result.duration)
            );
            for error in &result.errors {
                let _ = writeln!(out, "    Error: {error}");
            }
            if !result.pass {
                for (label, text) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
                    if !text.is_empty() {
                        let _ = writeln!(out, "    {label}: {}", text.trim_end());
                    }
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "image:       {} ({})", self.image, self.digest);
        let _ = writeln!(out, "passes:      {}", self.pass);
        let _ = writeln!(out, "failures:    {}", self.fail);
        if self.skipped > 0 {
            let _ = writeln!(out, "skipped:     {} (--fail-fast)", self.skipped);
        }
        let _ = writeln!(out, "duration:    {}", seconds(self.duration));
        let _ = writeln!(out, "total tests: {}", self.total);
        if let Some(kept) = &self.kept {
            let _ = writeln!(out, "kept:        tag {}", kept.tag);
            if let Some(bundle) = &kept.bundle {
                let _ = writeln!(out, "bundle:      {}", bundle.display());
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if self.total == 0 {
                "FAIL: no tests ran"
            } else if self.passed() {
                "PASS"
            } else {
                "FAIL"
            }
        );
        out
    }

    /// The JSON report on one line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("plain data serialises"))
    }

    /// The JUnit XML report; `suite` names the test suite.
    pub fn junit(&self, suite: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{}\">",
            xml(suite),
            self.total,
            self.fail,
            seconds_number(self.duration)
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            xml(suite),
            self.total,
            self.fail,
            self.skipped,
            seconds_number(self.duration)
        );
        let _ = writeln!(
            out,
            "    <properties>\n      <property name=\"image\" value=\"{}\"/>\n      <property name=\"digest\" value=\"{}\"/>\n    </properties>",
            xml(&self.image),
            xml(&self.digest)
        );
        for result in &self.results {
            let classname = result
                .name
                .split_once(':')
                .map_or(result.name.as_str(), |(kind, _)| kind);
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
                xml(&result.name),
                xml(classname),
                seconds_number(result.duration)
            );
            if !result.pass {
                let message = result.errors.first().map_or("failed", String::as_str);
                let _ = write!(
                    out,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml(message),
                    result
                        .code
                        .map_or("failure", |code| sealcraft_findings::Code::as_str(code)),
                    xml(&result.errors.join("\n"))
                );
            }
            if !result.stdout.is_empty() {
                let _ = write!(
                    out,
                    "\n      <system-out>{}</system-out>",
                    xml(&result.stdout)
                );
            }
            if !result.stderr.is_empty() {
                let _ = write!(
                    out,
                    "\n      <system-err>{}</system-err>",
                    xml(&result.stderr)
                );
            }
            let _ = writeln!(out, "\n    </testcase>");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", seconds_number(duration))
}

fn seconds_number(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// Text made safe for XML attributes and content; characters XML 1.0 cannot
/// hold at all (most control characters) become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(character));
            }
            character if (character as u32) < 0x20 => out.push('\u{FFFD}'),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            character => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_what_it_must() {
        assert_eq!(
            xml("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}"
        );
    }

    #[test]
    fn totals_count_what_ran() {
        let report = Report::new(
            "oci:x:y".into(),
            "sha256:0".into(),
            vec![
                TestResult::new("a", vec![], Duration::ZERO),
                TestResult::new("b", vec!["no".into()], Duration::ZERO),
            ],
            Duration::from_millis(5),
        );
        assert_eq!((report.pass, report.fail, report.total), (1, 1, 2));
        assert!(!report.passed());
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["Duration"], 5_000_000);
        assert_eq!(json["Results"][1]["Errors"][0], "no");
        assert!(json["Results"][0].get("Errors").is_none());
    }
}
