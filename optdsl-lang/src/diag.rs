//! Diagnostics: a message at a byte range of the source, and their rendering
//! as rustc renders its own (`FILE:LINE:COL`, the line, a caret under the
//! token) by `annotate-snippets`.

use crate::span::Span;
use std::fmt;

/// One error in a rule's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where: the offending token (its first byte is what a caret points at).
    pub span: Span,
    /// What is wrong, with the suggestion when there is one.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders `diagnostics` of the text of `file` as rustc renders errors:
/// `error: message`, `--> FILE:LINE:COL`, the source line and a caret under
/// the offending token. Without colour.
pub fn render(file: &str, text: &str, diagnostics: &[Diagnostic]) -> String {
    use annotate_snippets::{Level, Renderer, Snippet};
    let renderer = Renderer::plain();
    let mut out = String::new();
    for d in diagnostics {
        let start = floor_char_boundary(text, d.span.start.min(text.len()));
        let mut end = floor_char_boundary(text, d.span.end.min(text.len())).max(start);
        // One token: the caret covers the range up to the end of its line.
        if let Some(nl) = text[start..end].find('\n') {
            end = start + nl;
        }
        if end == start && start < text.len() {
            end = start + text[start..].chars().next().map_or(0, char::len_utf8);
        }
        let message = Level::Error.title(&d.message).snippet(
            Snippet::source(text)
                .origin(file)
                .fold(true)
                .annotation(Level::Error.span(start..end)),
        );
        out.push_str(&renderer.render(message).to_string());
        out.push_str("\n\n");
    }
    let n = diagnostics.len();
    if n > 0 {
        out.push_str(&format!(
            "error: could not compile `{file}` due to {n} previous error{}\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = "ab\ncd\n  ef";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 8), (3, 3));
    }

    #[test]
    fn rendering_names_the_file_line_and_column() {
        let text = "pub R {\n    hyper lr = 0.1;\n    w -= lr * sgn(g);\n}\n";
        let at = text.find("sgn").unwrap();
        let d = Diagnostic::new(
            Span::new(at, at + 3),
            "unknown function `sgn`; did you mean `sign`?",
        );
        let out = render("rules.opt", text, &[d]);
        assert!(out.contains("rules.opt:3:15"), "{out}");
        assert!(out.contains("did you mean `sign`?"), "{out}");
        let caret_line = out.lines().find(|l| l.contains('^')).unwrap();
        let src_line = out.lines().find(|l| l.contains("w -= lr")).unwrap();
        let caret = caret_line.find('^').unwrap();
        assert_eq!(&src_line[caret..caret + 3], "sgn", "{out}");
    }
}
