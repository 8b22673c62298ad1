//! `network!` specs: checked (widths, activations, the loss against the output
//! layer, all errors together) and expanded into a type that builds the
//! runtime's `Network` with all parameters in one buffer.

use crate::source::Source;
use optdsl_lang::ast::{NetDef, NetItem, Number};
use optdsl_lang::check::suggest;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

const ACTIVATIONS: &[&str] = &["sigmoid", "tanh", "relu", "identity", "softmax"];
const LOSSES: &[&str] = &["cross_entropy", "mse"];

/// A checked spec.
pub struct Net {
    docs: Vec<String>,
    vis: Option<String>,
    name: Ident,
    inputs: usize,
    layers: Vec<(usize, String)>,
    loss: String,
}

fn units(src: &Source, n: &Number, errors: &mut Vec<syn::Error>) -> usize {
    match n.text.parse::<usize>() {
        Ok(0) => {
            errors.push(syn::Error::new(
                src.at(n.span),
                "a layer needs at least 1 unit",
            ));
            1
        }
        Ok(u) => u,
        Err(_) => {
            errors.push(syn::Error::new(
                src.at(n.span),
                format!("`{}` is not a whole number of units", n.text),
            ));
            1
        }
    }
}

fn choice(
    src: &Source,
    name: &optdsl_lang::ast::Name,
    options: &[&str],
    what: &str,
    errors: &mut Vec<syn::Error>,
) {
    if !options.contains(&name.text.as_str()) {
        let hint = suggest(&name.text, options.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!("; one of {}", options.join(", ")));
        errors.push(syn::Error::new(
            src.at(name.span),
            format!("unknown {what} `{}`{hint}", name.text),
        ));
    }
}

/// Checks a spec; `Err` holds every error, combined.
pub fn check(src: &Source, def: &NetDef) -> syn::Result<Net> {
    let mut errors = Vec::new();
    let mut inputs = None;
    let mut layers = Vec::new();
    let mut loss: Option<optdsl_lang::ast::Name> = None;
    for (k, item) in def.items.iter().enumerate() {
        match item {
            NetItem::Input(n) => {
                if k != 0 || inputs.is_some() {
                    errors.push(syn::Error::new(
                        src.at(n.span),
                        "`input N;` comes once, first",
                    ));
                }
                inputs = Some(units(src, n, &mut errors));
            }
            NetItem::Dense(n, act) => {
                let u = units(src, n, &mut errors);
                choice(src, act, ACTIVATIONS, "activation", &mut errors);
                if loss.is_some() {
                    errors.push(syn::Error::new(src.at(n.span), "layers come before `loss`"));
                }
                layers.push((u, act.clone()));
            }
            NetItem::Loss(name) => {
                choice(src, name, LOSSES, "loss", &mut errors);
                if loss.is_some() {
                    errors.push(syn::Error::new(src.at(name.span), "`loss` is given twice"));
                }
                loss = Some(name.clone());
            }
        }
    }
    let last = layers.len().saturating_sub(1);
    for (i, (_, act)) in layers.iter().enumerate() {
        if act.text == "softmax" && i != last {
            errors.push(syn::Error::new(
                src.at(act.span),
                "softmax normalizes the output: only the last layer can have it",
            ));
        }
    }
    if inputs.is_none() {
        errors.push(syn::Error::new(
            src.at(def.name.span),
            "the spec needs `input N;` first",
        ));
    }
    if layers.is_empty() {
        errors.push(syn::Error::new(
            src.at(def.name.span),
            "the spec needs at least one `dense N activation;` layer",
        ));
    }
    match (&loss, layers.last()) {
        (None, _) => errors.push(syn::Error::new(
            src.at(def.name.span),
            "the spec needs `loss cross_entropy;` or `loss mse;` last",
        )),
        (Some(l), Some((_, act)))
            if l.text == "cross_entropy"
                && act.text != "softmax"
                && ACTIVATIONS.contains(&act.text.as_str()) =>
        {
            errors.push(syn::Error::new(src.at(l.span), format!("cross_entropy needs a softmax output layer, not {}; make the last layer softmax or use mse", act.text)));
        }
        _ => {}
    }
    if optdsl_lang::check::is_rust_keyword(&def.name.text) {
        errors.push(syn::Error::new(
            src.at(def.name.span),
            format!(
                "`{}` is a Rust keyword and cannot name a network",
                def.name.text
            ),
        ));
    }
    if let Some(mut first) = errors.pop() {
        for e in errors {
            first.combine(e);
        }
        return Err(first);
    }
    Ok(Net {
        docs: def.docs.clone(),
        vis: def.vis.clone(),
        name: Ident::new(&def.name.text, src.at(def.name.span)),
        inputs: inputs.unwrap_or(1),
        layers: layers.into_iter().map(|(u, a)| (u, a.text)).collect(),
        loss: loss.map(|l| l.text).unwrap_or_default(),
    })
}

fn variant(name: &str) -> Ident {
    let camel: String = name
        .split('_')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    Ident::new(&camel, Span::call_site())
}

/// The generated type: a `Network<F>` of this shape, built with a seed.
pub fn expand(net: &Net) -> TokenStream {
    let name = &net.name;
    let vis: syn::Visibility = net
        .vis
        .as_deref()
        .and_then(|v| syn::parse_str(v).ok())
        .unwrap_or(syn::Visibility::Inherited);
    let docs = &net.docs;
    let inputs = net.inputs;
    let widths: Vec<usize> = std::iter::once(net.inputs)
        .chain(net.layers.iter().map(|l| l.0))
        .collect();
    let params: usize = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    let outputs = widths.last().copied().unwrap_or(inputs);
    let layers = net.layers.iter().map(|(u, a)| {
        let v = variant(a);
        quote!(::optdsl::__private::net::LayerSpec::new(#u, ::optdsl::__private::net::Activation::#v))
    });
    let loss = variant(&net.loss);
    quote! {
        #(#[doc = #docs])*
        #[derive(Debug, Clone, PartialEq)]
        #vis struct #name<F: ::optdsl::__private::net::NetFloat = f32> {
            /// The network: all parameters in one buffer, each layer's weights
            /// and biases a segment of it.
            pub net: ::optdsl::__private::net::Network<F>,
        }

        impl<F: ::optdsl::__private::net::NetFloat> #name<F> {
            /// Input width.
            pub const INPUTS: usize = #inputs;
            /// Output width.
            pub const OUTPUTS: usize = #outputs;
            /// Number of parameters (weights and biases).
            pub const PARAM_COUNT: usize = #params;

            /// The shape, as the runtime describes networks.
            pub fn spec() -> ::optdsl::__private::net::NetworkSpec {
                ::optdsl::__private::net::NetworkSpec {
                    inputs: #inputs,
                    layers: ::std::vec![#(#layers),*],
                    loss: ::optdsl::__private::net::Loss::#loss,
                }
            }

            /// A network with weights drawn from a generator seeded with `seed`
            /// (Xavier for sigmoid/tanh, He for relu) and zero biases.
            pub fn new(seed: u64) -> Self {
                Self {
                    net: ::optdsl::__private::net::Network::new(Self::spec(), seed)
                        .expect("the spec was checked at compile time"),
                }
            }

            /// A network initialized from `generator` seeded with `seed`:
            /// [`Generator::Torch`](::optdsl::__private::rng::Generator::Torch)
            /// draws what PyTorch draws for the same layers after
            /// `torch.manual_seed(seed)`.
            pub fn new_with(seed: u64, generator: ::optdsl::__private::rng::Generator) -> Self {
                Self {
                    net: ::optdsl::__private::net::Network::new_with(Self::spec(), seed, generator)
                        .expect("the spec was checked at compile time"),
                }
            }
        }

        impl<F: ::optdsl::__private::net::NetFloat> ::core::ops::Deref for #name<F> {
            type Target = ::optdsl::__private::net::Network<F>;
            fn deref(&self) -> &Self::Target {
                &self.net
            }
        }

        impl<F: ::optdsl::__private::net::NetFloat> ::core::ops::DerefMut for #name<F> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.net
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn checked(tokens: TokenStream) -> syn::Result<Net> {
        let src = Source::new(tokens);
        let nets = optdsl_lang::parse::parse_networks(&src.text).expect("parses");
        check(&src, &nets[0])
    }

    fn errors(tokens: TokenStream) -> Vec<String> {
        match checked(tokens) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_course_network_checks_and_counts_its_parameters() {
        let net = checked(quote! {
            /// The slides' digits network.
            pub Digits { input 256; dense 128 sigmoid; dense 64 sigmoid; dense 10 softmax; loss cross_entropy; }
        })
        .unwrap();
        assert_eq!(net.layers.len(), 3);
        let out = expand(&net).to_string();
        let count = 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10;
        assert!(
            out.contains(&format!("PARAM_COUNT : usize = {count}usize")),
            "{out}"
        );
        assert!(out.contains("Activation :: Softmax"));
        assert!(out.contains("Loss :: CrossEntropy"));
    }

    #[test]
    fn spec_mistakes_are_all_reported() {
        let e = errors(
            quote!(N { input 4; dense 0 sigmoidd; dense 3 softmax; dense 2 tanh; loss cross_entropy; }),
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|m| m == "a layer needs at least 1 unit"));
        assert!(e
            .iter()
            .any(|m| m == "unknown activation `sigmoidd`; did you mean `sigmoid`?"));
        assert!(e
            .iter()
            .any(|m| m.starts_with("softmax normalizes the output")));
        assert!(e
            .iter()
            .any(|m| m.starts_with("cross_entropy needs a softmax output layer, not tanh")));
        let e = errors(quote!(N { dense 3 relu; }));
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
