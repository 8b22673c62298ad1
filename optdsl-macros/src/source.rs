//! Tokens -> text with a span table.
//!
//! The macro's input is tokens. They are written out as text, a space after
//! each token except a joint punctuation (so `-` `=` stays `-=`), and beside it
//! a table from byte offsets to token spans. `optdsl-lang` parses the text;
//! the byte range of every diagnostic and name maps back through the table,
//! so errors point at the offending token.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

/// The macro's tokens as text, with the span of the token at each offset.
pub struct Source {
    /// The text `optdsl-lang` parses.
    pub text: String,
    /// `(start, end, span)` of every token, in order.
    spans: Vec<(usize, usize, Span)>,
}

impl Source {
    /// Writes `tokens` out as text and records their spans.
    pub fn new(tokens: TokenStream) -> Self {
        let mut src = Source {
            text: String::new(),
            spans: Vec::new(),
        };
        src.flatten(tokens);
        src
    }

    fn push(&mut self, text: &str, span: Span, space: bool) {
        let start = self.text.len();
        self.text.push_str(text);
        self.spans.push((start, self.text.len(), span));
        if space {
            self.text.push(' ');
        }
    }

    fn flatten(&mut self, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    if !open.is_empty() {
                        self.push(open, g.span_open(), true);
                    }
                    self.flatten(g.stream());
                    if !close.is_empty() {
                        self.push(close, g.span_close(), true);
                    }
                }
                TokenTree::Ident(i) => self.push(&i.to_string(), i.span(), true),
                TokenTree::Punct(p) => {
                    let joint = p.spacing() == proc_macro2::Spacing::Joint;
                    self.push(&p.as_char().to_string(), p.span(), !joint)
                }
                TokenTree::Literal(l) => self.push(&l.to_string(), l.span(), true),
            }
        }
    }

    /// The span of the token at or after byte `offset` (the last token's at the end).
    pub fn span_at(&self, offset: usize) -> Span {
        let i = self.spans.partition_point(|&(_, end, _)| end <= offset);
        match self.spans.get(i).or(self.spans.last()) {
            Some(&(_, _, span)) => span,
            None => Span::call_site(),
        }
    }

    /// The span of the token where `range` starts.
    pub fn at(&self, range: optdsl_lang::Span) -> Span {
        self.span_at(range.start)
    }

    /// A diagnostic of `optdsl-lang` as a compile error at its token.
    pub fn error(&self, d: &optdsl_lang::Diagnostic) -> syn::Error {
        syn::Error::new(self.at(d.span), &d.message)
    }

    /// Diagnostics as one combined compile error.
    pub fn errors(&self, ds: &[optdsl_lang::Diagnostic]) -> TokenStream {
        let mut out = TokenStream::new();
        for d in ds {
            out.extend(self.error(d).to_compile_error());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn joint_punctuation_stays_together() {
        let src = Source::new(quote!(w -= lr * g; a <= b && c));
        assert_eq!(src.text, "w -= lr * g ; a <= b && c ");
    }
}
