//! Builder-side substitution and quoting, as a Dockerfile applies them to
//! the arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER,
//! VOLUME and WORKDIR (RUN, CMD and ENTRYPOINT are left to the shell).
//!
//! Supported: `$NAME`, `${NAME}`, `${NAME:-word}` / `${NAME-word}` (default
//! when unset or empty / when unset), `${NAME:+word}` / `${NAME+word}`
//! (alternative when set and non-empty / when set), `${NAME:?message}` /
//! `${NAME?message}` (an error when unset), single quotes (literal), double
//! quotes (substitution, no splitting) and the escape character.

use std::collections::BTreeMap;

/// The variables in scope: ARGs and ENVs, by name.
pub type Vars = BTreeMap<String, String>;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// A quote was opened and never closed.
    #[error("unterminated {quote} quote")]
    UnterminatedQuote {
        /// `single` or `double`.
        quote: &'static str,
    },
    /// `${` without its `}`.
    #[error("unterminated ${{...}} substitution")]
    UnterminatedBrace,
    /// `${}` or `${1abc}`.
    #[error("bad substitution {text:?}")]
    BadSubstitution {
        /// The text inside the braces.
        text: String,
    },
    /// `${NAME:?message}` with NAME unset.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given in the Dockerfile.
        message: String,
    },
}

struct Lexer<'a> {
    chars: Vec<char>,
    position: usize,
    escape: char,
    vars: &'a Vars,
}

/// Expands one word: substitutions applied, quotes and escapes removed, no splitting.
pub fn expand_word(text: &str, vars: &Vars, escape: char) -> Result<String, WordError> {
    let mut lexer = Lexer::new(text, vars, escape);
    let words = lexer.process(false)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Expands a list of words: like [`expand_word`], then split on unquoted
/// white space (including white space that substitutions bring in).
pub fn expand_words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, WordError> {
    let mut lexer = Lexer::new(text, vars, escape);
    lexer.process(true)
}

/// Substitutes variables in free text (a COPY heredoc): quotes are kept as
/// they are, and only `\$` escapes a dollar sign.
pub fn expand_text(text: &str, vars: &Vars, escape: char) -> Result<String, WordError> {
    let mut lexer = Lexer::new(text, vars, escape);
    let mut out = String::new();
    while let Some(ch) = lexer.next() {
        if ch == escape && lexer.peek() == Some('$') {
            lexer.position += 1;
            out.push('$');
        } else if ch == '$' {
            out.push_str(&lexer.dollar()?);
        } else {
            out.push(ch);
        }
    }
    Ok(out)
}

/// Splits on unquoted white space without substituting or removing quotes,
/// so each piece can be expanded later with the variables of its moment.
pub fn split_raw(text: &str, escape: char) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match quote {
            Some(open) => {
                current.push(ch);
                if ch == escape && open == '"' {
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                } else if ch == open {
                    quote = None;
                }
            }
            None if ch.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                current.push(ch);
                if ch == escape {
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                } else if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                }
            }
        }
    }
    if let Some(open) = quote {
        return Err(WordError::UnterminatedQuote {
            quote: if open == '\'' { "single" } else { "double" },
        });
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

impl<'a> Lexer<'a> {
    fn new(text: &str, vars: &'a Vars, escape: char) -> Self {
        Self {
            chars: text.chars().collect(),
            position: 0,
            escape,
            vars,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.position += 1;
        Some(ch)
    }

    /// The whole input; with `split`, a word ends at unquoted white space.
    fn process(&mut self, split: bool) -> Result<Vec<String>, WordError> {
        let mut words = Vec::new();
        let mut current = String::new();
        // A word exists once anything (even an empty quoted string) was seen.
        let mut started = false;
        while let Some(ch) = self.next() {
            if split && ch.is_whitespace() {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
                continue;
            }
            if ch == '$' && split {
                // An unquoted substitution that yields nothing makes no word.
                let value = self.dollar()?;
                let mut pieces = value.split(char::is_whitespace).peekable();
                while let Some(piece) = pieces.next() {
                    current.push_str(piece);
                    started |= !piece.is_empty();
                    if pieces.peek().is_some() && started {
                        words.push(std::mem::take(&mut current));
                        started = false;
                    }
                }
                continue;
            }
            started = true;
            if ch == self.escape {
                match self.next() {
                    Some(next) => current.push(next),
                    None => current.push(ch),
                }
            } else if ch == '\'' {
                self.single_quoted(&mut current)?;
            } else if ch == '"' {
                self.double_quoted(&mut current)?;
            } else if ch == '$' {
                let value = self.dollar()?;
                current.push_str(&value);
            } else {
                current.push(ch);
            }
        }
        if started || (!split && words.is_empty()) {
            words.push(current);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), WordError> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(ch) => out.push(ch),
                None => return Err(WordError::UnterminatedQuote { quote: "single" }),
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), WordError> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(ch) if ch == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.position += 1;
                        out.push(next);
                    }
                    _ => out.push(ch),
                },
                Some(ch) => out.push(ch),
                None => return Err(WordError::UnterminatedQuote { quote: "double" }),
            }
        }
    }

    /// After a `$`: a substitution, or a literal `$`.
    fn dollar(&mut self) -> Result<String, WordError> {
        match self.peek() {
            Some('{') => {
                self.position += 1;
                self.braced()
            }
            Some(ch) if ch == '_' || ch.is_ascii_alphabetic() => {
                let name = self.name();
                Ok(self.vars.get(&name).cloned().unwrap_or_default())
            }
            _ => Ok("$".to_owned()),
        }
    }

    /// The variable-name characters from here on (letters, digits, `_`).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self
            .peek()
            .filter(|ch| *ch == '_' || ch.is_ascii_alphanumeric())
        {
            name.push(ch);
            self.position += 1;
        }
        name
    }

    /// After `${`: the name, an optional modifier and its word, then `}`.
    fn braced(&mut self) -> Result<String, WordError> {
        let name = self.name();
        let valid = name
            .chars()
            .next()
            .is_some_and(|first| first == '_' || first.is_ascii_alphabetic());
        let value = self.vars.get(&name);
        match self.next() {
            Some('}') if valid => Ok(value.cloned().unwrap_or_default()),
            Some(':') if valid => {
                let modifier = self.next().ok_or(WordError::UnterminatedBrace)?;
                let word = self.modifier_word()?;
                let set = value.is_some_and(|value| !value.is_empty());
                self.apply(&name, value, set, modifier, word)
            }
            Some(modifier @ ('-' | '+' | '?')) if valid => {
                let word = self.modifier_word()?;
                self.apply(&name, value, value.is_some(), modifier, word)
            }
            None => Err(WordError::UnterminatedBrace),
            Some(other) => {
                let mut text = name;
                text.push(other);
                while let Some(ch) = self.next() {
                    if ch == '}' {
                        break;
                    }
                    text.push(ch);
                }
                Err(WordError::BadSubstitution { text })
            }
        }
    }

    fn apply(
        &self,
        name: &str,
        value: Option<&String>,
        set: bool,
        modifier: char,
        word: String,
    ) -> Result<String, WordError> {
        match modifier {
            '-' => Ok(if set {
                value.cloned().unwrap_or_default()
            } else {
                word
            }),
            '+' => Ok(if set { word } else { String::new() }),
            '?' if set => Ok(value.cloned().unwrap_or_default()),
            '?' => Err(WordError::Required {
                name: name.to_owned(),
                message: if word.is_empty() {
                    "is not set".to_owned()
                } else {
                    word
                },
            }),
            other => Err(WordError::BadSubstitution {
                text: format!("{name}:{other}{word}"),
            }),
        }
    }

    /// The word after a modifier, up to the matching `}`, itself expanded.
    fn modifier_word(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(out),
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some('\'') => self.single_quoted(&mut out)?,
                Some('"') => self.double_quoted(&mut out)?,
                Some(ch) if ch == self.escape => match self.next() {
                    Some(next) => out.push(next),
                    None => return Err(WordError::UnterminatedBrace),
                },
                Some(ch) => out.push(ch),
                None => return Err(WordError::UnterminatedBrace),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from([
            ("NAME".into(), "world".into()),
            ("EMPTY".into(), String::new()),
            ("SPACED".into(), "a b".into()),
        ])
    }

    fn word(text: &str) -> String {
        expand_word(text, &vars(), '\\').unwrap()
    }

    #[test]
    fn substitutions_follow_the_dockerfile_rules() {
        assert_eq!(word("hello $NAME"), "hello world");
        assert_eq!(word("${NAME}s"), "worlds");
        assert_eq!(word("${MISSING:-fallback}"), "fallback");
        assert_eq!(word("${EMPTY:-fallback}"), "fallback");
        assert_eq!(word("${EMPTY-fallback}"), "");
        assert_eq!(word("${MISSING-fallback}"), "fallback");
        assert_eq!(word("${NAME:+set}"), "set");
        assert_eq!(word("${EMPTY:+set}"), "");
        assert_eq!(word("${EMPTY+set}"), "set");
        assert_eq!(word("${MISSING:-${NAME}}"), "world");
        assert_eq!(word("${MISSING:-a b}"), "a b");
        assert_eq!(word("$MISSING"), "");
        assert_eq!(word("cost $5"), "cost $5");
        assert_eq!(word("a$"), "a$");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(word("'$NAME'"), "$NAME");
        assert_eq!(word("\"$NAME\""), "world");
        assert_eq!(word("\\$NAME"), "$NAME");
        assert_eq!(word("\"a \\\"q\\\" \\n\""), "a \"q\" \\n");
        assert_eq!(word("\"\""), "");
        assert_eq!(expand_word("`$NAME", &vars(), '`').unwrap(), "$NAME");
        assert_eq!(expand_word("C:\\dir", &vars(), '`').unwrap(), "C:\\dir");
    }

    #[test]
    fn words_split_on_unquoted_white_space() {
        let split = |text| expand_words(text, &vars(), '\\').unwrap();
        assert_eq!(split("a  b\t c"), ["a", "b", "c"]);
        assert_eq!(split("\"a b\" c"), ["a b", "c"]);
        assert_eq!(split("$SPACED c"), ["a", "b", "c"]);
        assert_eq!(split("\"$SPACED\""), ["a b"]);
        assert_eq!(split("x$SPACED"), ["xa", "b"]);
        assert_eq!(split("$EMPTY"), Vec::<String>::new());
        assert_eq!(split("''"), [""]);
        assert_eq!(split("a\\ b"), ["a b"]);
    }

    #[test]
    fn raw_splitting_keeps_quotes_for_later() {
        assert_eq!(
            split_raw("A=\"x y\" B='$z' C=\\ d", '\\').unwrap(),
            ["A=\"x y\"", "B='$z'", "C=\\ d"]
        );
        assert!(split_raw("A=\"open", '\\').is_err());
    }

    #[test]
    fn free_text_keeps_its_quotes() {
        assert_eq!(
            expand_text("name=\"$NAME\" cost=\\$5 '${MISSING:-x}'\n", &vars(), '\\').unwrap(),
            "name=\"world\" cost=$5 'x'\n"
        );
    }

    #[test]
    fn errors_are_reported() {
        let error = |text| expand_word(text, &vars(), '\\').unwrap_err();
        assert_eq!(
            error("${MISSING:?must be set}"),
            WordError::Required {
                name: "MISSING".into(),
                message: "must be set".into()
            }
        );
        assert!(matches!(error("${NAME"), WordError::UnterminatedBrace));
        assert!(matches!(error("${}"), WordError::BadSubstitution { .. }));
        assert!(matches!(error("${1A}"), WordError::BadSubstitution { .. }));
        assert!(matches!(
            error("${NAME/x/y}"),
            WordError::BadSubstitution { .. }
        ));
        assert!(matches!(
            error("'open"),
            WordError::UnterminatedQuote { .. }
        ));
    }
}
