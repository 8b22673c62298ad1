//! Code generation of a rule's type: the hyperparameter struct, its
//! `Default`, and the `UpdateRule` impl around the generated step, with the
//! rule's description (`RuleInfo`) whose program is the rule's own text
//! compiled again by `optdsl-lang` on first use.

use crate::kernel::{f64_lit, private};
use crate::source::Source;
use optdsl_lang::ast::RuleDef;
use optdsl_lang::ir::{Hyper, Program};
use optdsl_lang::typed::Default;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// What the type is made of: its name, docs, hyperparameters and the names
/// of its state, with the step's code or a fallback.
pub struct Shell<'a> {
    /// The rule's name.
    pub name: &'a str,
    /// Its span.
    pub span: proc_macro2::Span,
    /// Doc lines.
    pub docs: &'a [String],
    /// Visibility as written.
    pub vis: Option<&'a str>,
    /// The rule's text (compiled again for its `RuleInfo::program`).
    pub source: &'a str,
    /// Hyperparameters.
    pub hypers: Vec<Hyper>,
    /// Buffer names.
    pub buffers: Vec<String>,
    /// Scalar state names.
    pub scalars: Vec<String>,
    /// Input names.
    pub inputs: Vec<String>,
}

impl<'a> Shell<'a> {
    /// The shell of a lowered program.
    pub fn of(p: &'a Program, src: &Source) -> Shell<'a> {
        Shell {
            name: &p.name.text,
            span: src.at(p.name.span),
            docs: &p.docs,
            vis: p.vis.as_deref(),
            source: &p.source,
            hypers: p.hypers.clone(),
            buffers: p.buffers.iter().map(|b| b.name.clone()).collect(),
            scalars: p.scalars.iter().map(|b| b.name.clone()).collect(),
            inputs: p.inputs.clone(),
        }
    }
}

fn default_tokens(d: Default) -> (TokenStream, TokenStream, TokenStream) {
    let pr = private();
    match d {
        Default::Num(x) => {
            let l = f64_lit(x);
            (quote!(f64), l.clone(), quote!(#pr::HyperValue::Num(#l)))
        }
        Default::Bool(b) => (quote!(bool), quote!(#b), quote!(#pr::HyperValue::Bool(#b))),
    }
}

/// The type, its `Default`, and the `UpdateRule` impl with `init` and `apply`.
pub fn shell(sh: &Shell, src: &Source, init: TokenStream, apply: TokenStream) -> TokenStream {
    let pr = private();
    let name = Ident::new(sh.name, sh.span);
    let vis: syn::Visibility = sh
        .vis
        .and_then(|v| syn::parse_str(v).ok())
        .unwrap_or(syn::Visibility::Inherited);
    let docs = sh.docs;
    let doc_text = sh
        .docs
        .iter()
        .map(|d| d.trim())
        .collect::<Vec<_>>()
        .join("\n");
    let name_str = sh.name;
    let source = sh.source;
    let field = |h: &Hyper| Ident::new(&h.name.text, src.at(h.name.span));
    let fields = sh.hypers.iter().map(|h| {
        let f = field(h);
        let (ty, lit, _) = default_tokens(h.default);
        let doc = format!("Hyperparameter `{}` (default {}).", h.name.text, lit);
        quote!(#[doc = #doc] pub #f: #ty)
    });
    let defaults = sh.hypers.iter().map(|h| {
        let f = field(h);
        let (_, lit, _) = default_tokens(h.default);
        quote!(#f: #lit)
    });
    let bound = |b: Option<optdsl_lang::ast::Bound>| match b {
        Some(b) => {
            let v = f64_lit(b.value);
            let inc = b.inclusive;
            quote!(::core::option::Option::Some(#pr::Bound { value: #v, inclusive: #inc }))
        }
        None => quote!(::core::option::Option::None),
    };
    let specs = sh.hypers.iter().map(|h| {
        let n = &h.name.text;
        let (_, _, v) = default_tokens(h.default);
        let range = match h.range {
            Some(r) => {
                let (lo, hi) = (bound(r.lo), bound(r.hi));
                quote!(::core::option::Option::Some(#pr::HyperRange { lo: #lo, hi: #hi }))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(#pr::HyperSpec { name: #n, default: #v, range: #range })
    });
    let buffers = &sh.buffers;
    let scalars = &sh.scalars;
    let inputs = &sh.inputs;
    let get = sh.hypers.iter().map(|h| {
        let f = field(h);
        let n = &h.name.text;
        match h.default {
            Default::Num(_) => {
                quote!(#n => ::core::option::Option::Some(#pr::HyperValue::Num(self.#f)),)
            }
            Default::Bool(_) => {
                quote!(#n => ::core::option::Option::Some(#pr::HyperValue::Bool(self.#f)),)
            }
        }
    });
    let set = sh.hypers.iter().map(|h| {
        let f = field(h);
        let n = &h.name.text;
        let (variant, want_bool) = match h.default {
            Default::Num(_) => (quote!(Num), false),
            Default::Bool(_) => (quote!(Bool), true),
        };
        let check = if h.range.is_some() {
            quote!(#pr::check_range(Self::INFO, #n, __x)?;)
        } else {
            quote!()
        };
        quote! {
            #n => match __value {
                #pr::HyperValue::#variant(__x) => { #check self.#f = __x; ::core::result::Result::Ok(()) }
                __other => ::core::result::Result::Err(#pr::hyper_type(Self::INFO, #n, #want_bool, __other)),
            },
        }
    });
    quote! {
        #(#[doc = #docs])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        #vis struct #name {
            #(#fields,)*
        }

        impl ::core::default::Default for #name {
            fn default() -> Self {
                Self { #(#defaults,)* }
            }
        }

        impl #name {
            /// The hyperparameter `name`, or `None` if the rule has none of that name.
            #[allow(dead_code)]
            pub fn hyper(&self, name: &str) -> ::core::option::Option<#pr::HyperValue> {
                <Self as #pr::UpdateRule>::hyper(self, name)
            }

            /// Sets the hyperparameter `name`; a typed error for an unknown
            /// name or a value of the wrong type.
            #[allow(dead_code)]
            pub fn set_hyper(&mut self, name: &str, value: #pr::HyperValue) -> #pr::Result<()> {
                <Self as #pr::UpdateRule>::set_hyper(self, name, value)
            }
        }

        impl #pr::UpdateRule for #name {
            const INFO: &'static #pr::RuleInfo = &#pr::RuleInfo {
                name: #name_str,
                doc: #doc_text,
                hypers: &[#(#specs),*],
                buffers: &[#(#buffers),*],
                scalars: &[#(#scalars),*],
                inputs: &[#(#inputs),*],
                source: #source,
                program: #pr::ProgramRef::Compiled({
                    fn __program() -> &'static #pr::Program {
                        static PROGRAM: ::std::sync::OnceLock<#pr::Program> = ::std::sync::OnceLock::new();
                        PROGRAM.get_or_init(|| #pr::compile_one(#source))
                    }
                    __program
                }),
            };

            #init

            #apply

            fn hyper(&self, __name: &str) -> ::core::option::Option<#pr::HyperValue> {
                match __name {
                    #(#get)*
                    _ => ::core::option::Option::None,
                }
            }

            fn set_hyper(&mut self, __name: &str, __value: #pr::HyperValue) -> #pr::Result<()> {
                match __name {
                    #(#set)*
                    _ => ::core::result::Result::Err(#pr::unknown_hyper(Self::INFO, __name)),
                }
            }
        }
    }
}

/// What a rule with semantic errors expands to beside the errors: the type and
/// an impl whose bodies never run, so the user's other code still resolves and
/// only the real errors are shown.
pub fn fallback(rule: &RuleDef, src: &Source) -> TokenStream {
    let pr = private();
    let ok_name = |n: &str| {
        !optdsl_lang::check::is_rust_keyword(n)
            && n.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
    };
    if !optdsl_lang::check::can_name_a_type(&rule.name.text) {
        return TokenStream::new();
    }
    let mut seen = std::collections::HashSet::new();
    let hypers: Vec<Hyper> = rule
        .hypers
        .iter()
        .filter(|h| ok_name(&h.name.text) && seen.insert(h.name.text.clone()))
        .map(|h| Hyper {
            name: h.name.clone(),
            default: match h.value.kind {
                optdsl_lang::ast::ExprKind::Bool(b) => Default::Bool(b),
                _ => Default::Num(0.0),
            },
            range: None,
        })
        .collect();
    let sh = Shell {
        name: &rule.name.text,
        span: src.at(rule.name.span),
        docs: &rule.docs,
        vis: rule.vis.as_deref(),
        source: &rule.source,
        hypers,
        buffers: Vec::new(),
        scalars: Vec::new(),
        inputs: Vec::new(),
    };
    shell(
        &sh,
        src,
        quote! {
            fn init<F: #pr::Float>(&self, _: usize) -> #pr::State<F> {
                ::core::unreachable!("a rule with compile errors")
            }
        },
        quote! {
            fn apply<F: #pr::Float>(&self, _: &mut #pr::State<F>, _: &mut [F], _: &[F], _: &[&[F]]) {
                ::core::unreachable!("a rule with compile errors")
            }
        },
    )
}
