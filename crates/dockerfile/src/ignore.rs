//! `.dockerignore` rules.
//!
//! A line excludes what it matches and everything below it; a line
//! starting with `!` re-includes, and the last line that matches decides.

use sealcraft_glob::Pattern;

/// The rules of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(Pattern, bool)>,
}

impl IgnoreRules {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if let Some(pattern) = Pattern::new(pattern)
                && !pattern.is_root()
            {
                rules.push((pattern, include));
            }
        }
        Self { rules }
    }

    /// Whether `path` (relative to the context) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (pattern, include) in &self.rules {
            if pattern.matches_or_parent(path) {
                excluded = !include;
            }
        }
        excluded
    }

    /// Whether some rule re-includes paths below an excluded directory, so
    /// a walk must still enter it.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, include)| *include)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules_with_exceptions() {
        let rules = IgnoreRules::parse(
            "# comment\n\n*.log\nbuild\n!build/keep.txt\n/node_modules\n**/secret*\n",
        );
        assert!(rules.excludes("app.log"));
        assert!(!rules.excludes("logs/app.log"));
        assert!(rules.excludes("build"));
        assert!(rules.excludes("build/out.o"));
        assert!(!rules.excludes("build/keep.txt"));
        assert!(rules.excludes("node_modules/x/index.js"));
        assert!(rules.excludes("deep/dir/secret.key"));
        assert!(!rules.excludes("src/main.c"));
        assert!(rules.has_exceptions());
    }
}
