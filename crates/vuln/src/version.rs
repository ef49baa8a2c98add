//! Version orderings.
//!
//! Each function compares two version strings the way the ecosystem's own
//! tools do, and never panics on malformed input: strings a scheme cannot
//! parse are reported by the `parse_*` functions, so that callers can name
//! the advisory or package that carried them.

use std::cmp::Ordering;

/// A version string a scheme could not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{version:?} is not a valid {scheme} version: {reason}")]
pub struct InvalidVersion {
    /// The scheme.
    pub scheme: &'static str,
    /// The text.
    pub version: String,
    /// Why.
    pub reason: &'static str,
}

// ---------------------------------------------------------------- dpkg

/// A Debian version: `[epoch:]upstream[-revision]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianVersion {
    epoch: u64,
    upstream: String,
    revision: String,
}

/// Parses a Debian version.
pub fn parse_debian(text: &str) -> Result<DebianVersion, InvalidVersion> {
    let invalid = |reason| InvalidVersion {
        scheme: "Debian",
        version: text.to_owned(),
        reason,
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let (epoch, rest) = match text_trimmed.split_once(':') {
        Some((epoch, rest)) => (
            epoch
                .parse::<u64>()
                .map_err(|_| invalid("the epoch is not a number"))?,
            rest,
        ),
        None => (0, text_trimmed),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(invalid("empty upstream version"));
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("the upstream version must start with a digit"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-' | ':');
    if !upstream.chars().all(allowed)
        || !revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~'))
    {
        return Err(invalid("contains characters a Debian version may not have"));
    }
    Ok(DebianVersion {
        epoch,
        upstream: upstream.to_owned(),
        revision: revision.to_owned(),
    })
}

/// dpkg's character order: `~` sorts before everything, even the end;
/// letters before other characters.
fn dpkg_order(character: Option<u8>) -> i32 {
    match character {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs.
fn dpkg_compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_difference = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = dpkg_order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = dpkg_order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_difference == 0 {
                first_difference = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_difference != 0 {
            return first_difference.cmp(&0);
        }
    }
    Ordering::Equal
}

impl Ord for DebianVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| dpkg_compare_part(&self.upstream, &other.upstream))
            .then_with(|| dpkg_compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebianVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------- RPM

/// rpm's `rpmvercmp` on one of version or release.
fn rpm_compare_part(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && !a[i].is_ascii_alphanumeric() && a[i] != b'~' && a[i] != b'^' {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() && b[j] != b'~' && b[j] != b'^' {
            j += 1;
        }
        // Tilde sorts before everything; caret after the end but before anything else.
        match (a.get(i) == Some(&b'~'), b.get(j) == Some(&b'~')) {
            (true, true) => {
                i += 1;
                j += 1;
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        match (a.get(i) == Some(&b'^'), b.get(j) == Some(&b'^')) {
            (true, true) => {
                i += 1;
                j += 1;
                continue;
            }
            (true, false) => {
                return if j >= b.len() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
            }
            (false, true) => {
                return if i >= a.len() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            _ => {}
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let run = |bytes: &[u8], mut k: usize| {
            let start = k;
            while k < bytes.len()
                && (if numeric {
                    bytes[k].is_ascii_digit()
                } else {
                    bytes[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (a_start, a_end) = run(a, i);
        let (b_start, b_end) = run(b, j);
        if b_start == b_end {
            // Different kinds of segment: numbers are newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ordering = if numeric {
            let trim = |s: &[u8]| {
                let zeros = s.iter().take_while(|&&c| c == b'0').count();
                s[zeros..].to_vec()
            };
            let (x, y) = (trim(&a[a_start..a_end]), trim(&b[b_start..b_end]));
            x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
        } else {
            a[a_start..a_end].cmp(&b[b_start..b_end])
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        i = a_end;
        j = b_end;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

/// Compares RPM `[epoch:]version[-release]` strings.
pub fn compare_rpm(a: &str, b: &str) -> Ordering {
    let split = |text: &str| -> (u64, String, String) {
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
            None => (0, text),
        };
        match rest.rsplit_once('-') {
            Some((version, release)) => (epoch, version.to_owned(), release.to_owned()),
            None => (epoch, rest.to_owned(), String::new()),
        }
    };
    let (a_epoch, a_version, a_release) = split(a);
    let (b_epoch, b_version, b_release) = split(b);
    a_epoch
        .cmp(&b_epoch)
        .then_with(|| rpm_compare_part(&a_version, &b_version))
        .then_with(|| {
            if a_release.is_empty() || b_release.is_empty() {
                Ordering::Equal
            } else {
                rpm_compare_part(&a_release, &b_release)
            }
        })
}

// ---------------------------------------------------------------- apk

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ApkSuffix {
    Alpha(u64),
    Beta(u64),
    Pre(u64),
    Rc(u64),
    None,
    Cvs(u64),
    Svn(u64),
    Git(u64),
    Hg(u64),
    P(u64),
}

/// An Alpine version: `digits(.digits)*[letter](_suffix[n])*[-rN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkVersion {
    numbers: Vec<u64>,
    letter: Option<u8>,
    suffixes: Vec<ApkSuffix>,
    revision: u64,
}

/// Parses an Alpine version.
pub fn parse_apk(text: &str) -> Result<ApkVersion, InvalidVersion> {
    let invalid = |reason| InvalidVersion {
        scheme: "Alpine",
        version: text.to_owned(),
        reason,
    };
    let (main, revision) = match text.rsplit_once("-r") {
        Some((main, revision)) => (
            main,
            revision
                .parse::<u64>()
                .map_err(|_| invalid("the revision is not a number"))?,
        ),
        None => (text, 0),
    };
    let mut parts = main.split('_');
    let numeric = parts.next().unwrap_or("");
    let (numeric, letter) = match numeric.as_bytes().last() {
        Some(c) if c.is_ascii_lowercase() => (&numeric[..numeric.len() - 1], Some(*c)),
        _ => (numeric, None),
    };
    let numbers = numeric
        .split('.')
        .map(|part| {
            part.parse::<u64>()
                .map_err(|_| invalid("a component is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut suffixes = Vec::new();
    for suffix in parts {
        let split = suffix
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(suffix.len());
        let (name, number) = suffix.split_at(split);
        let number = if number.is_empty() {
            0
        } else {
            number
                .parse()
                .map_err(|_| invalid("a suffix number is not a number"))?
        };
        suffixes.push(match name {
            "alpha" => ApkSuffix::Alpha(number),
            "beta" => ApkSuffix::Beta(number),
            "pre" => ApkSuffix::Pre(number),
            "rc" => ApkSuffix::Rc(number),
            "cvs" => ApkSuffix::Cvs(number),
            "svn" => ApkSuffix::Svn(number),
            "git" => ApkSuffix::Git(number),
            "hg" => ApkSuffix::Hg(number),
            "p" => ApkSuffix::P(number),
            _ => return Err(invalid("unknown suffix")),
        });
    }
    Ok(ApkVersion {
        numbers,
        letter,
        suffixes,
        revision,
    })
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let length = self.numbers.len().max(other.numbers.len());
        for index in 0..length {
            match (self.numbers.get(index), other.numbers.get(index)) {
                (Some(a), Some(b)) if a != b => return a.cmp(b),
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                _ => {}
            }
        }
        self.letter.cmp(&other.letter).then_with(|| {
            let length = self.suffixes.len().max(other.suffixes.len());
            for index in 0..length {
                let a = self.suffixes.get(index).cloned().unwrap_or(ApkSuffix::None);
                let b = other
                    .suffixes
                    .get(index)
                    .cloned()
                    .unwrap_or(ApkSuffix::None);
                if a != b {
                    return a.cmp(&b);
                }
            }
            self.revision.cmp(&other.revision)
        })
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------- PEP 440

/// A PEP 440 version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440Version {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = alpha, 1 = beta, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<String>,
}

/// Parses (and normalises) a PEP 440 version.
pub fn parse_pep440(text: &str) -> Result<Pep440Version, InvalidVersion> {
    let invalid = |reason| InvalidVersion {
        scheme: "PEP 440",
        version: text.to_owned(),
        reason,
    };
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix('v').unwrap_or(&lower);
    let (public, local) = match lower.split_once('+') {
        Some((public, local)) => (
            public,
            local.split(['.', '-', '_']).map(str::to_owned).collect(),
        ),
        None => (lower, Vec::new()),
    };
    let (epoch, rest) = match public.split_once('!') {
        Some((epoch, rest)) => (
            epoch
                .parse()
                .map_err(|_| invalid("the epoch is not a number"))?,
            rest,
        ),
        None => (0, public),
    };
    let bytes = rest.as_bytes();
    let mut position = 0;
    let number = |position: &mut usize| -> Option<u64> {
        let start = *position;
        while *position < bytes.len() && bytes[*position].is_ascii_digit() {
            *position += 1;
        }
        rest[start..*position].parse().ok()
    };
    let mut release = vec![number(&mut position).ok_or_else(|| invalid("no release number"))?];
    while position < bytes.len()
        && bytes[position] == b'.'
        && bytes.get(position + 1).is_some_and(u8::is_ascii_digit)
    {
        position += 1;
        release.push(number(&mut position).ok_or_else(|| invalid("bad release segment"))?);
    }
    let skip_separator = |position: &mut usize| {
        if *position < bytes.len() && matches!(bytes[*position], b'.' | b'-' | b'_') {
            *position += 1;
        }
    };
    let mut pre = None;
    let mut post = None;
    let mut dev = None;
    let word = |position: usize, words: &[&str]| {
        words
            .iter()
            .find(|word| rest[position..].starts_with(**word))
            .map(|word| word.len())
    };
    let before = position;
    skip_separator(&mut position);
    let pre_words = ["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"];
    if let Some(length) = word(position, &pre_words) {
        let name = &rest[position..position + length];
        position += length;
        skip_separator(&mut position);
        let kind = match name {
            "alpha" | "a" => 0,
            "beta" | "b" => 1,
            _ => 2,
        };
        pre = Some((kind, number(&mut position).unwrap_or(0)));
    } else {
        position = before;
    }
    let before = position;
    if position < bytes.len()
        && bytes[position] == b'-'
        && bytes.get(position + 1).is_some_and(u8::is_ascii_digit)
    {
        position += 1;
        post = number(&mut position);
    } else {
        skip_separator(&mut position);
        if let Some(length) = word(position, &["post", "rev", "r"]) {
            position += length;
            skip_separator(&mut position);
            post = Some(number(&mut position).unwrap_or(0));
        } else {
            position = before;
        }
    }
    let before = position;
    skip_separator(&mut position);
    if rest[position..].starts_with("dev") {
        position += 3;
        skip_separator(&mut position);
        dev = Some(number(&mut position).unwrap_or(0));
    } else {
        position = before;
    }
    if position != bytes.len() {
        return Err(invalid("unexpected text after the version"));
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    Ok(Pep440Version {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // dev-only releases sort before pre-releases; a missing pre sorts after any pre.
        let pre_key = |v: &Pep440Version| match (v.pre, v.post, v.dev) {
            (None, None, Some(_)) => (0u8, 0u8, 0u64),
            (Some((kind, number)), _, _) => (1, kind, number),
            (None, _, _) => (2, 0, 0),
        };
        let post_key = |v: &Pep440Version| v.post.map_or((0u8, 0u64), |post| (1, post));
        let dev_key = |v: &Pep440Version| v.dev.map_or((1u8, 0u64), |dev| (0, dev));
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| {
                let length = self.release.len().max(other.release.len());
                (0..length)
                    .map(|index| {
                        self.release
                            .get(index)
                            .unwrap_or(&0)
                            .cmp(other.release.get(index).unwrap_or(&0))
                    })
                    .find(|ordering| *ordering != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            })
            .then_with(|| pre_key(self).cmp(&pre_key(other)))
            .then_with(|| post_key(self).cmp(&post_key(other)))
            .then_with(|| dev_key(self).cmp(&dev_key(other)))
            .then_with(|| {
                let key = |part: &String| {
                    part.parse::<u64>()
                        .map_or((0u8, 0u64, part.clone()), |number| {
                            (1, number, String::new())
                        })
                };
                self.local.iter().map(key).cmp(other.local.iter().map(key))
            })
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------- SemVer

/// A SemVer 2 version (a leading `v` accepted, as Go writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

/// Parses SemVer; build metadata is ignored, as precedence requires.
pub fn parse_semver(text: &str) -> Result<SemVer, InvalidVersion> {
    let invalid = |reason| InvalidVersion {
        scheme: "SemVer",
        version: text.to_owned(),
        reason,
    };
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let text = text.split('+').next().unwrap_or(text);
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, pre.split('.').map(str::to_owned).collect::<Vec<_>>()),
        None => (text, Vec::new()),
    };
    if pre.iter().any(String::is_empty) {
        return Err(invalid("empty pre-release identifier"));
    }
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3 {
        return Err(invalid("expected MAJOR.MINOR.PATCH"));
    }
    let number = |part: &str| {
        part.parse::<u64>()
            .map_err(|_| invalid("a component is not a number"))
    };
    Ok(SemVer {
        major: number(numbers[0])?,
        minor: number(numbers[1])?,
        patch: number(numbers[2])?,
        pre,
    })
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let ordering = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if ordering != Ordering::Equal {
                            return ordering;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn debian(a: &str, b: &str) -> Ordering {
        parse_debian(a).unwrap().cmp(&parse_debian(b).unwrap())
    }

    #[test]
    fn debian_order() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+deb12u1", Less),
            ("1:1.0", "2.0", Greater),
            ("1.2.13.dfsg-1", "1.2.13.dfsg-1+b1", Less),
            ("3.0.17-1~deb12u2", "3.0.17-1", Less),
            ("2.36-9+deb12u7", "2.36-9+deb12u10", Less),
            ("1.0a", "1.0+", Less),
            ("1.0~~", "1.0~", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u14", Less),
            ("1.10.0-3+b1", "1.10.0-3", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.001", "1.1", Equal),
        ];
        for (a, b, expected) in cases {
            assert_eq!(debian(a, b), expected, "{a} vs {b}");
            assert_eq!(debian(b, a), expected.reverse(), "{b} vs {a}");
        }
        assert!(parse_debian("a1.0").is_err());
        assert!(parse_debian("x:1.0").is_err());
        assert!(parse_debian("").is_err());
    }

    #[test]
    fn rpm_order() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("3.0.7-27.el9", "3.0.7-28.el9", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.10", "1.9", Greater),
            ("1.0-1", "1.0", Equal),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_rpm(a, b), expected, "{a} vs {b}");
            assert_eq!(compare_rpm(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn apk_order() {
        let apk = |a: &str, b: &str| parse_apk(a).unwrap().cmp(&parse_apk(b).unwrap());
        let cases = [
            ("1.2.4-r2", "1.2.4-r10", Less),
            ("1.2.4_rc1", "1.2.4", Less),
            ("1.2.4_p1", "1.2.4", Greater),
            ("1.2.4a", "1.2.4", Greater),
            ("1.2.4_git20230717-r4", "1.2.4-r4", Greater),
            ("1.36.1-r15", "1.36.1-r2", Greater),
            ("1.10", "1.9", Greater),
        ];
        for (a, b, expected) in cases {
            assert_eq!(apk(a, b), expected, "{a} vs {b}");
            assert_eq!(apk(b, a), expected.reverse(), "{b} vs {a}");
        }
        assert!(parse_apk("1.x").is_err());
    }

    #[test]
    fn pep440_order() {
        let pep = |a: &str, b: &str| parse_pep440(a).unwrap().cmp(&parse_pep440(b).unwrap());
        let ascending = [
            "1.0.dev1",
            "1.0a1",
            "1.0a2.dev1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.0.1",
            "1!0.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(pep(pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(pep("1.0", "1.0.0"), Equal);
        assert_eq!(pep("1.0-1", "1.0.post1"), Equal);
        assert_eq!(pep("2023.7.22", "2022.12.7"), Greater);
        assert!(parse_pep440("not-a-version").is_err());
    }

    #[test]
    fn semver_order() {
        let semver = |a: &str, b: &str| parse_semver(a).unwrap().cmp(&parse_semver(b).unwrap());
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "v1.10.0",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(semver(pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
        }
        // Go pseudo-versions order by their timestamp part.
        assert_eq!(
            semver(
                "v0.0.0-20230101120000-abcdefabcdef",
                "v0.0.0-20240101120000-abcdefabcdef"
            ),
            Less
        );
        assert_eq!(semver("1.0.0+build1", "1.0.0+build2"), Equal);
        assert!(parse_semver("1.0").is_err());
    }

    proptest::proptest! {
        #[test]
        fn debian_is_a_total_order(a in "[0-9]{1,3}(\\.[0-9a-z~+]{1,4}){0,3}(-[0-9a-z.+~]{1,5})?", b in "[0-9]{1,3}(\\.[0-9a-z~+]{1,4}){0,3}(-[0-9a-z.+~]{1,5})?") {
            let (x, y) = (parse_debian(&a).unwrap(), parse_debian(&b).unwrap());
            proptest::prop_assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
            proptest::prop_assert_eq!(x.cmp(&x), Equal);
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,40}") {
            let _ = parse_debian(&text);
            let _ = parse_apk(&text);
            let _ = parse_pep440(&text);
            let _ = parse_semver(&text);
            let _ = compare_rpm(&text, "1.0-1");
        }

        #[test]
        fn semver_antisymmetric(a in "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,3})?)?", b in "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,3})?)?") {
            let (x, y) = (parse_semver(&a).unwrap(), parse_semver(&b).unwrap());
            proptest::prop_assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
        }
    }
}
