//! Path globs, as Dockerfiles (COPY sources, `.dockerignore`) and Go's
//! `filepath.Match` define them; also used for ld.so.conf includes and
//! the paths hardening keeps.
//!
//! A pattern is matched against a slash-separated relative path one
//! segment at a time: `*` and `?` never cross a `/`, `[a-z]` and `[^a-z]`
//! are classes, `\` escapes, and a `**` segment spans any number of
//! directories.

/// One glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<String>,
}

/// Whether `text` has glob metacharacters.
pub fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Cleans a path the way Go's `path.Clean` does, relative to the root:
/// no leading `/`, no `.` segments, `..` applied; `None` if it climbs out.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

impl Pattern {
    /// A pattern from text; `None` when it climbs out of the root.
    pub fn new(text: &str) -> Option<Self> {
        let cleaned = clean(text)?;
        Some(Self {
            segments: cleaned.split('/').map(str::to_owned).collect(),
        })
    }

    /// Whether the pattern is the root itself (`/`, `.`, empty).
    pub fn is_root(&self) -> bool {
        self.segments.len() == 1 && self.segments[0].is_empty()
    }

    /// Whether the pattern matches `path` exactly (`a/b/c`).
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        match_segments(&self.segments, &parts)
    }

    /// Whether the pattern matches `path` or one of its parent directories.
    pub fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let mut end = path.len();
        while let Some(slash) = path[..end].rfind('/') {
            if self.matches(&path[..slash]) {
                return true;
            }
            end = slash;
        }
        false
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, remaining)) => {
                match_segment(first, name) && match_segments(rest, remaining)
            }
            None => false,
        },
    }
}

/// Go `filepath.Match` on one segment.
fn match_segment(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        '?' => !name.is_empty() && match_from(rest, &name[1..]),
        '[' => {
            let Some((&ch, remaining_name)) = name.split_first() else {
                return false;
            };
            match class(rest, ch) {
                Some((true, after)) => match_from(after, remaining_name),
                _ => false,
            }
        }
        '\\' => match rest.split_first() {
            Some((&escaped, after)) => {
                name.first() == Some(&escaped) && match_from(after, &name[1..])
            }
            None => false,
        },
        literal => name.first() == Some(&literal) && match_from(rest, &name[1..]),
    }
}

/// A character class after its `[`: whether `ch` is in it, and what follows `]`.
fn class(pattern: &[char], ch: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match pattern.first() {
        Some('^') | Some('!') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&current, after) = rest.split_first()?;
        if current == ']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (low, after) = if current == '\\' {
            let (&escaped, after) = after.split_first()?;
            (escaped, after)
        } else {
            (current, after)
        };
        if after.first() == Some(&'-') && after.get(1).is_some_and(|&end| end != ']') {
            let (high, after) = match after[1] {
                '\\' => (*after.get(2)?, &after[3..]),
                high => (high, &after[2..]),
            };
            matched |= low <= ch && ch <= high;
            rest = after;
        } else {
            matched |= low == ch;
            rest = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::new(text).unwrap()
    }

    #[test]
    fn globs_match_one_segment_at_a_time() {
        assert!(pattern("*.txt").matches("a.txt"));
        assert!(!pattern("*.txt").matches("dir/a.txt"));
        assert!(pattern("*/*.txt").matches("dir/a.txt"));
        assert!(pattern("**/*.txt").matches("a.txt"));
        assert!(pattern("**/*.txt").matches("x/y/a.txt"));
        assert!(pattern("src/**").matches("src/a/b"));
        assert!(pattern("file?.c").matches("file1.c"));
        assert!(!pattern("file?.c").matches("file10.c"));
        assert!(pattern("[a-c]x").matches("bx"));
        assert!(!pattern("[^a-c]x").matches("bx"));
        assert!(pattern("[!a-c]x").matches("dx"));
        assert!(pattern("\\*lit").matches("*lit"));
        assert!(!pattern("\\*lit").matches("xlit"));
        assert!(pattern("/abs/./path/").matches("abs/path"));
        assert!(Pattern::new("../outside").is_none());
        assert!(has_glob("a*") && !has_glob("plain/path"));
    }
}
