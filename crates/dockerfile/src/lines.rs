//! From text to logical lines: parser directives at the top, continuations
//! joined (comment lines inside them dropped), heredoc bodies attached to
//! the RUN, COPY or ADD that opens them.

use std::collections::BTreeSet;

use crate::parse::{ParseError, syntax};

/// A logical line: continuations joined, comments removed, heredoc bodies attached.
pub(crate) struct LogicalLine {
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Heredoc {
    pub(crate) word: String,
    pub(crate) content: String,
    pub(crate) quoted: bool,
}

/// Parser directives at the top of the file: `# escape=`, `# syntax=`, `# check=`.
pub(crate) fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut seen = BTreeSet::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            return Ok((escape, index));
        };
        let Some((name, value)) = comment.split_once('=') else {
            return Ok((escape, index));
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            return Ok((escape, index));
        }
        let value = value.trim();
        if !seen.insert(name.clone()) {
            return Err(ParseError {
                line: index + 1,
                problem: syntax(format!("the {name} directive may only be given once")),
            });
        }
        match name.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError {
                            line: index + 1,
                            problem: syntax(format!(
                                "invalid escape character {other:?}: it must be ` or \\"
                            )),
                        });
                    }
                }
            }
            // The frontend is sealcraft's own; syntax and check need no action.
            "syntax" | "check" => {}
            // Unknown directives are comments, as in BuildKit.
            _ => return Ok((escape, index)),
        }
    }
    Ok((escape, lines.len()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Joins continuations, drops comment and empty lines, and collects heredoc bodies.
pub(crate) fn logical_lines(
    lines: &[&str],
    start: usize,
    escape: char,
) -> Result<Vec<LogicalLine>, ParseError> {
    let mut result = Vec::new();
    let mut index = start;
    while index < lines.len() {
        let line = lines[index];
        if line.trim().is_empty() || is_comment(line) {
            index += 1;
            continue;
        }
        let first = index;
        let mut text = String::new();
        loop {
            let current = lines[index];
            index += 1;
            let trimmed = current.trim_end();
            match trimmed.strip_suffix(escape) {
                Some(body) => {
                    text.push_str(body);
                    // Comment and empty lines inside a continuation are skipped.
                    while index < lines.len()
                        && (lines[index].trim().is_empty() || is_comment(lines[index]))
                    {
                        index += 1;
                    }
                    if index >= lines.len() {
                        break;
                    }
                }
                None => {
                    text.push_str(current);
                    break;
                }
            }
        }
        let (keyword, rest) = split_keyword(&text);
        let mut heredocs = Vec::new();
        if matches!(
            keyword.to_ascii_uppercase().as_str(),
            "RUN" | "COPY" | "ADD"
        ) {
            for (word, strip_tabs, quoted) in heredoc_words(rest) {
                let mut content = String::new();
                loop {
                    let Some(body_line) = lines.get(index) else {
                        return Err(ParseError {
                            line: first + 1,
                            problem: syntax(format!("heredoc <<{word} is never terminated")),
                        });
                    };
                    index += 1;
                    let body_line = if strip_tabs {
                        body_line.trim_start_matches('\t')
                    } else {
                        body_line
                    };
                    if body_line == word {
                        break;
                    }
                    content.push_str(body_line);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    word,
                    content,
                    quoted,
                });
            }
        }
        result.push(LogicalLine {
            line: first + 1,
            text: text.trim().to_owned(),
            heredocs,
        });
    }
    Ok(result)
}

/// Heredoc markers `<<WORD`, `<<-WORD`, `<<"WORD"`, `<<'WORD'` in a line.
fn heredoc_words(text: &str) -> Vec<(String, bool, bool)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut position = 0;
    while position + 2 < bytes.len() + 1 {
        if bytes.get(position) == Some(&'<') && bytes.get(position + 1) == Some(&'<') {
            let mut cursor = position + 2;
            let strip_tabs = bytes.get(cursor) == Some(&'-');
            if strip_tabs {
                cursor += 1;
            }
            let quote = match bytes.get(cursor) {
                Some(&q @ ('"' | '\'')) => {
                    cursor += 1;
                    Some(q)
                }
                _ => None,
            };
            let begin = cursor;
            while cursor < bytes.len()
                && (bytes[cursor].is_ascii_alphanumeric() || bytes[cursor] == '_')
            {
                cursor += 1;
            }
            let word: String = bytes[begin..cursor].iter().collect();
            let closed = match quote {
                Some(q) => bytes.get(cursor) == Some(&q),
                None => true,
            };
            if !word.is_empty()
                && closed
                && word.chars().next().is_some_and(|c| !c.is_ascii_digit())
            {
                found.push((word, strip_tabs, quote.is_some()));
                position = cursor + usize::from(quote.is_some());
                continue;
            }
        }
        position += 1;
    }
    found
}

/// The instruction keyword of a line and the rest after it.
pub(crate) fn split_keyword(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
}
