//! Code generation: a lowered rule becomes a hyperparameter struct, its
//! `Default`, and an `UpdateRule` impl whose step is per-step scalars in f64,
//! then one fused pass per reduction stage and one update pass, each a single
//! loop over zipped `chunks_exact` of every buffer it touches.

use crate::ast::{BinOp, RuleDef, UnOp};
use crate::check::{Kind, Ty};
use crate::lower::{Default, Id, Op, Program, Reduction};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

/// Per-step boolean conditions a pass is compiled for, as const generics (at
/// most this many; each doubles the copies). A buffer whose update is
/// `if cond { new } else { itself }` is then neither read nor written in the
/// copy where `cond` is false (Adam without AMSGrad never touches its max).
const SPECIALIZED: usize = 3;

/// Elements per chunk of the fused loop (one AVX-512 register of f32).
const LANES: usize = 64;

fn f64_lit(x: f64) -> TokenStream {
    if x.is_nan() {
        quote!(::core::f64::NAN)
    } else if x == f64::INFINITY {
        quote!(::core::f64::INFINITY)
    } else if x == f64::NEG_INFINITY {
        quote!(::core::f64::NEG_INFINITY)
    } else {
        let lit = Literal::f64_suffixed(x);
        quote!(#lit)
    }
}

fn s(id: Id) -> Ident {
    format_ident!("__s{}", id)
}
fn e(id: Id) -> Ident {
    format_ident!("__e{}", id)
}
fn c(id: Id) -> Ident {
    format_ident!("__c{}", id)
}

/// Where a pass reads or writes: `w`, `g` or a state buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    W,
    G,
    Buf(usize),
    Input(usize),
}

impl Slot {
    /// The whole slice in `apply`.
    fn all(self) -> Ident {
        match self {
            Slot::W => format_ident!("__wa"),
            Slot::G => format_ident!("__ga"),
            Slot::Buf(i) => format_ident!("__ba{}", i),
            Slot::Input(i) => format_ident!("__ia{}", i),
        }
    }
    /// The block's slice, a parameter of the pass function.
    fn block(self) -> Ident {
        match self {
            Slot::W => format_ident!("__w"),
            Slot::G => format_ident!("__g"),
            Slot::Buf(i) => format_ident!("__b{}", i),
            Slot::Input(i) => format_ident!("__i{}", i),
        }
    }
    /// The chunk's slice inside the loop.
    fn chunk(self) -> Ident {
        match self {
            Slot::W => format_ident!("__wc"),
            Slot::G => format_ident!("__gc"),
            Slot::Buf(i) => format_ident!("__b{}c", i),
            Slot::Input(i) => format_ident!("__i{}c", i),
        }
    }
}

/// One fused loop: the element values it computes, what it writes and reduces.
struct Pass {
    name: Ident,
    elements: Vec<Id>,
    inputs: Vec<Id>,
    writes: Vec<(Slot, Id)>,
    reductions: Vec<(Reduction, Id, Id)>,
    slots: Vec<(Slot, bool)>,
}

fn float() -> TokenStream {
    quote!(<F as ::optdsl::__private::Float>)
}

impl<'a> Gen<'a> {
    fn operand(&self, id: Id) -> TokenStream {
        let v = &self.p.values[id];
        if v.kind == Kind::Element {
            let x = e(id);
            quote!(#x)
        } else {
            let x = c(id);
            quote!(#x)
        }
    }

    /// The right-hand side of per-step scalar `id`, in f64.
    fn scalar_rhs(&self, id: Id) -> TokenStream {
        let p = self.p;
        let r = |a: Id| {
            let x = s(a);
            quote!(#x)
        };
        match &p.values[id].op {
            Op::Num(bits) => f64_lit(f64::from_bits(*bits)),
            Op::Bool(b) => quote!(#b),
            Op::Hyper(i) => {
                let f = format_ident!("{}", p.hypers[*i].name);
                quote!(self.#f)
            }
            Op::Step => quote!(__t),
            Op::ScalarState(i) => quote!(__state.scalars[#i]),
            Op::Unary(UnOp::Neg, a) => {
                let a = r(*a);
                quote!(-#a)
            }
            Op::Unary(UnOp::Not, a) => {
                let a = r(*a);
                quote!(!#a)
            }
            Op::Binary(op, a, b) => {
                let (a, b) = (r(*a), r(*b));
                match op {
                    BinOp::Pow => quote!(f64::powf(#a, #b)),
                    BinOp::And => quote!(#a && #b),
                    BinOp::Or => quote!(#a || #b),
                    _ => binary_tokens(*op, a, b),
                }
            }
            Op::Func(name, args) => {
                let args: Vec<TokenStream> = args.iter().map(|&a| r(a)).collect();
                match *name {
                    "sqrt" | "abs" | "exp" | "ln" => {
                        let f = format_ident!("{}", name);
                        quote!(f64::#f(#(#args),*))
                    }
                    "sign" => quote!(::optdsl::__private::scalar::sign(#(#args),*)),
                    // A per-step scalar rounded to the element type, as a
                    // library computing it in that type would have it.
                    "float" => {
                        quote!(<F as ::optdsl::__private::Float>::to_f64(<F as ::optdsl::__private::Float>::from_f64(#(#args),*)))
                    }
                    "min" => quote!(::optdsl::__private::scalar::minimum(#(#args),*)),
                    "max" => quote!(::optdsl::__private::scalar::maximum(#(#args),*)),
                    _ => quote!(::optdsl::__private::scalar::clip(#(#args),*)),
                }
            }
            Op::Select(cnd, a, b) => {
                let (cnd, a, b) = (r(*cnd), r(*a), r(*b));
                quote!(if #cnd { #a } else { #b })
            }
            Op::Param | Op::Grad | Op::Buffer(_) | Op::Input(_) | Op::Reduce(..) => {
                unreachable!("not a per-step scalar")
            }
        }
    }

    fn scalar_let(&self, id: Id) -> TokenStream {
        let name = s(id);
        let rhs = self.scalar_rhs(id);
        if self.p.values[id].ty == Ty::Bool {
            quote!(let #name: bool = #rhs;)
        } else {
            quote!(let #name: f64 = #rhs;)
        }
    }

    /// `let __eN: F = ...;` for element value `id`, inside the loop.
    fn element_let(&self, id: Id) -> TokenStream {
        let p = self.p;
        let f = float();
        let r = |a: Id| self.operand(a);
        let name = e(id);
        let rhs = match &p.values[id].op {
            Op::Param => {
                let x = Slot::W.chunk();
                quote!(#x[__i])
            }
            Op::Grad => {
                let x = Slot::G.chunk();
                quote!(#x[__i])
            }
            Op::Buffer(i) => {
                let x = Slot::Buf(*i).chunk();
                quote!(#x[__i])
            }
            Op::Input(i) => {
                let x = Slot::Input(*i).chunk();
                quote!(#x[__i])
            }
            Op::Unary(UnOp::Neg, a) => {
                let a = r(*a);
                quote!(-#a)
            }
            Op::Unary(UnOp::Not, a) => {
                let a = r(*a);
                quote!(!#a)
            }
            Op::Binary(op, a, b) => {
                let (a, b) = (r(*a), r(*b));
                match op {
                    BinOp::Pow => quote!(#f::powf(#a, #b)),
                    BinOp::And => quote!(#a & #b),
                    BinOp::Or => quote!(#a | #b),
                    _ => binary_tokens(*op, a, b),
                }
            }
            Op::Func(fname, args) => {
                let args: Vec<TokenStream> = args.iter().map(|&a| r(a)).collect();
                if *fname == "float" {
                    // Per element, values are in the element type already.
                    let a = &args[0];
                    return if p.values[id].ty == Ty::Bool {
                        quote!(let #name: bool = #a;)
                    } else {
                        quote!(let #name: F = #a;)
                    };
                }
                let m = match *fname {
                    "min" => format_ident!("minimum"),
                    "max" => format_ident!("maximum"),
                    "clamp" => format_ident!("clip"),
                    other => format_ident!("{}", other),
                };
                quote!(#f::#m(#(#args),*))
            }
            Op::Select(cnd, a, b) => {
                let (cnd, a, b) = (r(*cnd), r(*a), r(*b));
                quote!(if #cnd { #a } else { #b })
            }
            _ => unreachable!("not a per-element value"),
        };
        if p.values[id].ty == Ty::Bool {
            quote!(let #name: bool = #rhs;)
        } else {
            quote!(let #name: F = #rhs;)
        }
    }
}

fn binary_tokens(op: BinOp, a: TokenStream, b: TokenStream) -> TokenStream {
    match op {
        BinOp::Add => quote!(#a + #b),
        BinOp::Sub => quote!(#a - #b),
        BinOp::Mul => quote!(#a * #b),
        BinOp::Div => quote!(#a / #b),
        BinOp::Lt => quote!(#a < #b),
        BinOp::Le => quote!(#a <= #b),
        BinOp::Gt => quote!(#a > #b),
        BinOp::Ge => quote!(#a >= #b),
        BinOp::Eq => quote!(#a == #b),
        BinOp::Ne => quote!(#a != #b),
        BinOp::And => quote!(#a && #b),
        BinOp::Or => quote!(#a || #b),
        BinOp::Pow => quote!(f64::powf(#a, #b)),
    }
}

struct Gen<'a> {
    p: &'a Program,
}

impl Gen<'_> {
    fn plan(
        &self,
        name: &str,
        writes: Vec<(Slot, Id)>,
        reductions: Vec<(Reduction, Id, Id)>,
    ) -> Pass {
        let p = self.p;
        let roots = writes
            .iter()
            .map(|w| w.1)
            .chain(reductions.iter().map(|r| r.2));
        let all = p.closure(roots);
        let elements: Vec<Id> = all
            .iter()
            .copied()
            .filter(|&i| p.values[i].kind == Kind::Element)
            .collect();
        let mut inputs: Vec<Id> = elements
            .iter()
            .flat_map(|&i| crate::lower::operands(&p.values[i].op))
            .chain(writes.iter().map(|w| w.1))
            .filter(|&i| p.values[i].kind != Kind::Element)
            .collect();
        inputs.sort_unstable();
        inputs.dedup();
        let mut slots: Vec<(Slot, bool)> = Vec::new();
        for &i in &elements {
            let slot = match p.values[i].op {
                Op::Param => Slot::W,
                Op::Grad => Slot::G,
                Op::Buffer(b) => Slot::Buf(b),
                Op::Input(b) => Slot::Input(b),
                _ => continue,
            };
            slots.push((slot, false));
        }
        for w in &writes {
            slots.push((w.0, true));
        }
        slots.sort();
        slots.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 |= later.1;
                true
            } else {
                false
            }
        });
        Pass {
            name: format_ident!("{}", name),
            elements,
            inputs,
            writes,
            reductions,
            slots,
        }
    }

    /// The pass as a nested function over one block of every slice it touches.
    fn pass_fn(&self, pass: &Pass) -> TokenStream {
        let p = self.p;
        let f = float();
        let name = &pass.name;
        let nums: Vec<Id> = pass
            .inputs
            .iter()
            .copied()
            .filter(|&i| p.values[i].ty == Ty::Num)
            .collect();
        let bools: Vec<Id> = pass
            .inputs
            .iter()
            .copied()
            .filter(|&i| p.values[i].ty == Ty::Bool)
            .collect();
        let (nn, nb) = (nums.len(), bools.len());
        let num_names = nums.iter().map(|&i| c(i));
        let bool_names = bools.iter().map(|&i| c(i));
        let params = pass.slots.iter().map(|&(slot, m)| {
            let x = slot.block();
            if m {
                quote!(#x: &mut [F])
            } else {
                quote!(#x: &[F])
            }
        });
        let first = pass.slots[0].0.block();
        let chunks = |n: TokenStream, range: TokenStream| {
            let mut iter = TokenStream::new();
            let mut pat = TokenStream::new();
            for (k, &(slot, m)) in pass.slots.iter().enumerate() {
                let x = slot.block();
                let base = quote!(#x[#range]);
                let it = if m {
                    quote!((#base).chunks_exact_mut(#n))
                } else {
                    quote!((#base).chunks_exact(#n))
                };
                let ch = slot.chunk();
                if k == 0 {
                    iter = it;
                    pat = quote!(#ch);
                } else {
                    iter = quote!(#iter.zip(#it));
                    pat = quote!((#pat, #ch));
                }
            }
            (iter, pat)
        };
        let lets = pass.elements.iter().map(|&i| self.element_let(i));
        let writes = pass.writes.iter().map(|&(slot, id)| {
            let ch = slot.chunk();
            let v = self.operand(id);
            quote!(#ch[__i] = #v;)
        });
        let accs = (0..pass.reductions.len()).map(|j| format_ident!("__acc{}", j));
        let acc_init = accs
            .clone()
            .map(|a| quote!(let mut #a = [#f::ZERO; #LANES];));
        let acc_update = pass
            .reductions
            .iter()
            .enumerate()
            .map(|(j, &(kind, _, arg))| {
                let a = format_ident!("__acc{}", j);
                let x = e(arg);
                match kind {
                    Reduction::Sum | Reduction::Mean => quote!(#a[__lane] += #x;),
                    Reduction::Norm => quote!(#a[__lane] += #x * #x;),
                    Reduction::MaxAbs => quote!(#a[__lane] = #f::maximum(#a[__lane], #f::abs(#x));),
                }
            });
        let acc_finish = pass.reductions.iter().enumerate().map(|(j, &(kind, _, _))| {
            let a = format_ident!("__acc{}", j);
            match kind {
                Reduction::MaxAbs => quote!(#a.iter().fold(0.0f64, |m, &x| ::optdsl::__private::scalar::maximum(m, #f::to_f64(x)))),
                // Lanes in the order of the block's elements, whatever the peel.
                _ => quote!((0..#LANES).map(|__l| #f::to_f64(#a[(__l + #LANES - __head) % #LANES])).sum::<f64>()),
            }
        });
        let body = quote! {
            #(#lets)*
            #(#writes)*
            #(#acc_update)*
        };
        let (head_iter, head_pat) = chunks(quote!(1), quote!(..__head));
        let (main_iter, main_pat) = chunks(quote!(#LANES), quote!(__head..));
        let (tail_iter, tail_pat) = chunks(quote!(1), quote!(__m..));
        let nr = pass.reductions.len();
        let params: Vec<TokenStream> = params.collect();
        let args: Vec<Ident> = pass.slots.iter().map(|&(slot, _)| slot.block()).collect();
        let avx2 = format_ident!("{}_avx2", name);
        let avx512 = format_ident!("{}_avx512", name);
        let consts: Vec<Ident> = (0..nb.min(SPECIALIZED))
            .map(|k| format_ident!("__B{}", k))
            .collect();
        let fixed = bools.iter().zip(&consts).map(|(&i, k)| {
            let x = c(i);
            quote!(let #x: bool = #k;)
        });
        let generics = quote!(<F: ::optdsl::__private::Float #(, const #consts: bool)*>);
        let turbofish = quote!(::<F #(, #consts)*>);
        quote! {
            // The same loop compiled for AVX2 and AVX-512; `apply` picks one
            // by the CPU it runs on (the copies differ only in instructions:
            // no fused multiply-add, so results are identical).
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(unused, clippy::all)]
            unsafe fn #avx2 #generics(__cf: &[F; #nn], __cb: &[bool; #nb], #(#params),*) -> [f64; #nr] {
                #name #turbofish(__cf, __cb, #(#args),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(unused, clippy::all)]
            unsafe fn #avx512 #generics(__cf: &[F; #nn], __cb: &[bool; #nb], #(#params),*) -> [f64; #nr] {
                #name #turbofish(__cf, __cb, #(#args),*)
            }
            #[inline(always)]
            #[allow(unused, clippy::all)]
            fn #name #generics(__cf: &[F; #nn], __cb: &[bool; #nb], #(#params),*) -> [f64; #nr] {
                let [#(#num_names),*] = *__cf;
                let [#(#bool_names),*] = *__cb;
                #(#fixed)*
                #(#acc_init)*
                // Peel elements until the first slice is 64-byte aligned: large
                // buffers share their offset from the page, so all then are.
                let __head = {
                    let __size = ::core::mem::size_of::<F>();
                    let __bytes = (64 - #first.as_ptr() as usize % 64) % 64;
                    if __bytes % __size == 0 { ::core::cmp::min(__bytes / __size, #first.len()) } else { 0 }
                };
                // Element e of the block always adds to lane (e - head) mod LANES,
                // so reductions do not depend on where the buffers were allocated.
                for (__k, #head_pat) in #head_iter.enumerate() {
                    let __i = 0usize;
                    let __lane = __k + #LANES - __head;
                    #body
                }
                for #main_pat in #main_iter {
                    for __i in 0..#LANES {
                        let __lane = __i;
                        #body
                    }
                }
                let __m = __head + (#first.len() - __head) / #LANES * #LANES;
                for (__k, #tail_pat) in #tail_iter.enumerate() {
                    let __i = 0usize;
                    let __lane = __k % #LANES;
                    #body
                }
                [#(#acc_finish),*]
            }
        }
    }

    /// The call of a pass over every super-block and block, and what it reduces.
    fn pass_call(&self, pass: &Pass) -> TokenStream {
        let p = self.p;
        let f = float();
        let name = &pass.name;
        let avx2 = format_ident!("{}_avx2", name);
        let avx512 = format_ident!("{}_avx512", name);
        let nums = pass
            .inputs
            .iter()
            .copied()
            .filter(|&i| p.values[i].ty == Ty::Num)
            .map(s);
        let bools = pass
            .inputs
            .iter()
            .copied()
            .filter(|&i| p.values[i].ty == Ty::Bool)
            .map(s);
        let params: Vec<TokenStream> = pass
            .slots
            .iter()
            .map(|&(slot, m)| {
                let x = slot.block();
                if m {
                    quote!(#x: &mut [F])
                } else {
                    quote!(#x: &[F])
                }
            })
            .collect();
        let block_args: Vec<TokenStream> = pass
            .slots
            .iter()
            .map(|&(slot, m)| {
                let x = slot.block();
                if m {
                    quote!(&mut #x[__lo..__hi])
                } else {
                    quote!(&#x[__lo..__hi])
                }
            })
            .collect();
        let first = pass.slots[0].0.block();
        let nr = pass.reductions.len();
        let combine = |part: TokenStream| -> Vec<TokenStream> {
            pass.reductions
                .iter()
                .enumerate()
                .map(|(j, r)| match r.0 {
                    Reduction::MaxAbs => quote!(__red[#j] = ::optdsl::__private::scalar::maximum(__red[#j], #part[#j]);),
                    _ => quote!(__red[#j] += #part[#j];),
                })
                .collect()
        };
        let combine_block = combine(quote!(__part));
        let combine_super = combine(quote!(__part));
        // Zipped super-block iterators over the whole slices (rayon or std).
        let supers = |par: bool| {
            let mut iter = TokenStream::new();
            let mut pat = TokenStream::new();
            for (k, &(slot, m)) in pass.slots.iter().enumerate() {
                let x = slot.all();
                let it = match (par, m) {
                    (true, true) => quote!(#x.par_chunks_mut(__plan.size)),
                    (true, false) => quote!(#x.par_chunks(__plan.size)),
                    (false, true) => quote!(#x.chunks_mut(__plan.size)),
                    (false, false) => quote!(#x.chunks(__plan.size)),
                };
                let b = slot.block();
                if k == 0 {
                    iter = it;
                    pat = quote!(#b);
                } else {
                    iter = quote!(#iter.zip(#it));
                    pat = quote!((#pat, #b));
                }
            }
            (iter, pat)
        };
        let (par_iter, par_pat) = supers(true);
        let (seq_iter, seq_pat) = supers(false);
        let args: Vec<Ident> = pass.slots.iter().map(|&(slot, _)| slot.block()).collect();
        let parallel = if nr == 0 {
            quote! {
                #par_iter.for_each(|#par_pat| { __run(#(#args),*); });
            }
        } else {
            quote! {
                let mut __parts = [[0.0f64; #nr]; ::optdsl::__private::MAX_SUPERS];
                __parts[..__plan.count].par_iter_mut().zip(#par_iter).for_each(|(__out, #par_pat)| {
                    *__out = __run(#(#args),*);
                });
                for __part in &__parts[..__plan.count] {
                    #(#combine_super)*
                }
            }
        };
        let nspec = pass
            .inputs
            .iter()
            .filter(|&&i| p.values[i].ty == Ty::Bool)
            .count()
            .min(SPECIALIZED);
        let spec_keys: Vec<TokenStream> = (0..nspec).map(|k| quote!(__cb[#k])).collect();
        let mut arms = Vec::new();
        for combo in 0..(1usize << nspec) {
            let bits: Vec<bool> = (0..nspec).map(|k| combo >> k & 1 == 1).collect();
            let turbofish = quote!(::<F #(, #bits)*>);
            let simd = quote!(::optdsl::__private::Simd);
            arms.push(quote! {
                // SAFETY: `simd_level` never reports a level the CPU lacks.
                #[cfg(target_arch = "x86_64")]
                (#simd::Avx512 #(, #bits)*) => unsafe { #avx512 #turbofish(&__cf, &__cb, #(#block_args),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                (#simd::Avx2 #(, #bits)*) => unsafe { #avx2 #turbofish(&__cf, &__cb, #(#block_args),*) },
                (_ #(, #bits)*) => #name #turbofish(&__cf, &__cb, #(#block_args),*),
            });
        }
        let call = quote! {
            let __cf = [#(#f::from_f64(#nums)),*];
            let __cb = [#(#bools),*];
            let __run = |#(#params),*| -> [f64; #nr] {
                let mut __red = [0.0f64; #nr];
                let __len = #first.len();
                let mut __lo = 0usize;
                while __lo < __len {
                    let __hi = if __len - __lo > ::optdsl::__private::BLOCK { __lo + ::optdsl::__private::BLOCK } else { __len };
                    let __part = match (__simd #(, #spec_keys)*) {
                        #(#arms)*
                    };
                    #(#combine_block)*
                    __lo = __hi;
                }
                __red
            };
            let mut __red = [0.0f64; #nr];
            if __plan.parallel {
                use ::optdsl::__private::rayon::prelude::*;
                #parallel
            } else {
                for #seq_pat in #seq_iter {
                    let __part = __run(#(#args),*);
                    #(#combine_super)*
                }
            }
        };
        let finish = pass
            .reductions
            .iter()
            .enumerate()
            .map(|(j, &(kind, id, _))| {
                let x = s(id);
                match kind {
                    Reduction::Sum | Reduction::MaxAbs => quote!(let #x: f64 = __red[#j];),
                    Reduction::Mean => quote!(let #x: f64 = __red[#j] / __n as f64;),
                    Reduction::Norm => quote!(let #x: f64 = f64::sqrt(__red[#j]);),
                }
            });
        if nr == 0 {
            quote!({ #call })
        } else {
            let ids: Vec<Ident> = pass.reductions.iter().map(|r| s(r.1)).collect();
            quote! {
                let (#(#ids,)*) = { #call #(#finish)* (#(#ids,)*) };
            }
        }
    }

    fn apply(&self) -> TokenStream {
        let p = self.p;
        // What each pass computes.
        let init_writes: Vec<(Slot, Id)> = p
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| p.values[b.init].kind == Kind::Element)
            .map(|(i, b)| (Slot::Buf(i), b.init))
            .collect();
        let mut final_writes: Vec<(Slot, Id)> =
            p.w_out.map(|id| (Slot::W, id)).into_iter().collect();
        for (i, out) in p.buffer_out.iter().enumerate() {
            if let Some(id) = out {
                final_writes.push((Slot::Buf(i), *id));
            }
        }
        let mut passes = Vec::new();
        let mut fns = Vec::new();
        let init_pass = (!init_writes.is_empty())
            .then(|| self.plan("__init_pass", init_writes.clone(), Vec::new()));
        if let Some(ip) = &init_pass {
            fns.push(self.pass_fn(ip));
        }
        for stage in 1..=p.stages {
            let reds: Vec<(Reduction, Id, Id)> = p
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.stage == stage)
                .filter_map(|(id, v)| match v.op {
                    Op::Reduce(r, arg) => Some((r, id, arg)),
                    _ => None,
                })
                .collect();
            let pass = self.plan(&format!("__reduce_pass{stage}"), Vec::new(), reds);
            fns.push(self.pass_fn(&pass));
            passes.push(pass);
        }
        let update = (!final_writes.is_empty())
            .then(|| self.plan("__update_pass", final_writes.clone(), Vec::new()));
        if let Some(u) = &update {
            fns.push(self.pass_fn(u));
        }
        // The per-step scalars that anything needs, by stage.
        let roots = final_writes
            .iter()
            .map(|w| w.1)
            .chain(init_writes.iter().map(|w| w.1))
            .chain(p.scalar_out.iter().flatten().copied());
        let needed: Vec<Id> = p
            .closure(roots)
            .into_iter()
            .filter(|&i| {
                p.values[i].kind != Kind::Element && !matches!(p.values[i].op, Op::Reduce(..))
            })
            .collect();
        let scalars_at = |stage: usize| -> Vec<TokenStream> {
            needed
                .iter()
                .copied()
                .filter(|&i| p.values[i].stage == stage)
                .map(|i| self.scalar_let(i))
                .collect()
        };
        let mut body = Vec::new();
        body.extend(scalars_at(0));
        if let Some(ip) = &init_pass {
            let call = self.pass_call(ip);
            body.push(quote!(if __first { #call }));
        }
        for (k, pass) in passes.iter().enumerate() {
            body.push(self.pass_call(pass));
            body.extend(scalars_at(k + 1));
        }
        if let Some(u) = &update {
            body.push(self.pass_call(u));
        }
        for (i, out) in p.scalar_out.iter().enumerate() {
            if let Some(id) = out {
                let x = s(*id);
                body.push(quote!(__state.scalars[#i] = #x;));
            }
        }
        let bufs: Vec<Ident> = (0..p.buffers.len()).map(|i| Slot::Buf(i).all()).collect();
        let destructure = if bufs.is_empty() {
            quote!()
        } else {
            quote! {
                let [#(#bufs),*] = &mut __state.buffers[..] else {
                    ::core::unreachable!("the state was checked")
                };
            }
        };
        let inputs: Vec<Ident> = (0..p.inputs.len()).map(|i| Slot::Input(i).all()).collect();
        let input_destructure = if inputs.is_empty() {
            quote!()
        } else {
            quote! {
                let [#(#inputs),*] = __inputs else {
                    ::core::unreachable!("the inputs were checked")
                };
            }
        };
        quote! {
            #[allow(unused, clippy::all)]
            fn apply<F: ::optdsl::__private::Float>(&self, __state: &mut ::optdsl::__private::State<F>, __wa: &mut [F], __ga: &[F], __inputs: &[&[F]]) {
                #(#fns)*
                #input_destructure
                let __first = __state.t == 0;
                __state.t += 1;
                let __t = __state.t as f64;
                let __n = __wa.len();
                let __simd = ::optdsl::__private::simd_level();
                let __plan = ::optdsl::__private::Plan::new(__n);
                #destructure
                #(#body)*
            }
        }
    }

    fn init(&self) -> TokenStream {
        let p = self.p;
        let at_init = |id: Id| p.values[id].kind != Kind::Element;
        let roots = p
            .buffers
            .iter()
            .chain(&p.scalars)
            .map(|b| b.init)
            .filter(|&id| at_init(id));
        let lets = p.closure(roots).into_iter().map(|i| self.scalar_let(i));
        let buf_vals = p.buffers.iter().map(|b| {
            if at_init(b.init) {
                let x = s(b.init);
                quote!(#x)
            } else {
                quote!(0.0f64)
            }
        });
        let scalar_vals = p.scalars.iter().map(|b| s(b.init));
        quote! {
            #[allow(unused, clippy::all)]
            fn init<F: ::optdsl::__private::Float>(&self, __len: usize) -> ::optdsl::__private::State<F> {
                #(#lets)*
                ::optdsl::__private::State::new(
                    <Self as ::optdsl::__private::UpdateRule>::INFO,
                    __len,
                    &[#(#buf_vals),*],
                    &[#(#scalar_vals),*],
                )
            }
        }
    }
}

fn default_tokens(d: Default) -> (TokenStream, TokenStream, TokenStream) {
    match d {
        Default::Num(x) => {
            let l = f64_lit(x);
            (
                quote!(f64),
                l.clone(),
                quote!(::optdsl::__private::HyperValue::Num(#l)),
            )
        }
        Default::Bool(b) => (
            quote!(bool),
            quote!(#b),
            quote!(::optdsl::__private::HyperValue::Bool(#b)),
        ),
    }
}

/// The lowered program as a static `Ir` table for the reference interpreter.
fn ir_tokens(p: &Program) -> TokenStream {
    let pr = quote!(::optdsl::__private);
    let values = p.values.iter().map(|v| {
        let op = match &v.op {
            Op::Num(bits) => {
                let x = f64_lit(f64::from_bits(*bits));
                quote!(Num(#x))
            }
            Op::Bool(b) => quote!(Bool(#b)),
            Op::Hyper(i) => quote!(Hyper(#i)),
            Op::Step => quote!(Step),
            Op::ScalarState(i) => quote!(ScalarState(#i)),
            Op::Param => quote!(Param),
            Op::Grad => quote!(Grad),
            Op::Buffer(i) => quote!(Buffer(#i)),
            Op::Input(i) => quote!(Input(#i)),
            Op::Unary(UnOp::Neg, a) => quote!(Neg(#a)),
            Op::Unary(UnOp::Not, a) => quote!(Not(#a)),
            Op::Binary(op, a, b) => {
                let o = Ident::new(&format!("{op:?}"), Span::call_site());
                quote!(Bin(#pr::IrBin::#o, #a, #b))
            }
            Op::Func(name, args) => {
                let f = match *name {
                    "sqrt" => quote!(Sqrt),
                    "abs" => quote!(Abs),
                    "sign" => quote!(Sign),
                    "exp" => quote!(Exp),
                    "ln" => quote!(Ln),
                    "min" => quote!(Min),
                    "max" => quote!(Max),
                    "float" => quote!(Float),
                    _ => quote!(Clamp),
                };
                let a = |k: usize| args.get(k).copied().unwrap_or(args[0]);
                let (a0, a1, a2) = (a(0), a(1), a(2));
                quote!(Func(#pr::IrFunc::#f, [#a0, #a1, #a2]))
            }
            Op::Select(c, a, b) => quote!(Select(#c, #a, #b)),
            Op::Reduce(r, a) => {
                let r = Ident::new(&format!("{r:?}"), Span::call_site());
                quote!(Reduce(#pr::IrReduce::#r, #a))
            }
        };
        let element = v.kind == Kind::Element;
        let boolean = v.ty == Ty::Bool;
        quote!(#pr::IrValue { op: #pr::IrOp::#op, element: #element, boolean: #boolean })
    });
    let opt = |o: &Option<Id>| match o {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    };
    let w_out = opt(&p.w_out);
    let buffer_out = p.buffer_out.iter().map(opt);
    let scalar_out = p.scalar_out.iter().map(opt);
    let buffer_init = p.buffers.iter().map(|b| b.init);
    quote! {
        &#pr::Ir {
            values: &[#(#values),*],
            w_out: #w_out,
            buffer_out: &[#(#buffer_out),*],
            scalar_out: &[#(#scalar_out),*],
            buffer_init: &[#(#buffer_init),*],
        }
    }
}

/// The type, its `Default`, and the parts of `UpdateRule` that need no
/// lowering: shared by the full expansion and the fallback.
fn shell(p: &Program, init: TokenStream, apply: TokenStream) -> TokenStream {
    let name = Ident::new(&p.name, p.span);
    let vis: syn::Visibility = p
        .vis
        .as_deref()
        .and_then(|v| syn::parse_str(v).ok())
        .unwrap_or(syn::Visibility::Inherited);
    let docs = &p.docs;
    let doc_text = p
        .docs
        .iter()
        .map(|d| d.trim())
        .collect::<Vec<_>>()
        .join("\n");
    let name_str = &p.name;
    let source = &p.source;
    let fields = p.hypers.iter().map(|h| {
        let f = Ident::new(&h.name, h.span);
        let (ty, lit, _) = default_tokens(h.default);
        let doc = format!("Hyperparameter `{}` (default {}).", h.name, lit);
        quote!(#[doc = #doc] pub #f: #ty)
    });
    let defaults = p.hypers.iter().map(|h| {
        let f = Ident::new(&h.name, h.span);
        let (_, lit, _) = default_tokens(h.default);
        quote!(#f: #lit)
    });
    let specs = p.hypers.iter().map(|h| {
        let n = &h.name;
        let (_, _, v) = default_tokens(h.default);
        quote!(::optdsl::__private::HyperSpec { name: #n, default: #v })
    });
    let buffers = p.buffers.iter().map(|b| &b.name);
    let scalars = p.scalars.iter().map(|b| &b.name);
    let inputs = p.inputs.iter();
    let ir = ir_tokens(p);
    let get = p.hypers.iter().map(|h| {
        let f = Ident::new(&h.name, h.span);
        let n = &h.name;
        match h.default {
            Default::Num(_) => quote!(#n => ::core::option::Option::Some(::optdsl::__private::HyperValue::Num(self.#f)),),
            Default::Bool(_) => quote!(#n => ::core::option::Option::Some(::optdsl::__private::HyperValue::Bool(self.#f)),),
        }
    });
    let set = p.hypers.iter().map(|h| {
        let f = Ident::new(&h.name, h.span);
        let n = &h.name;
        let (variant, want_bool) = match h.default {
            Default::Num(_) => (quote!(Num), false),
            Default::Bool(_) => (quote!(Bool), true),
        };
        quote! {
            #n => match __value {
                ::optdsl::__private::HyperValue::#variant(__x) => { self.#f = __x; ::core::result::Result::Ok(()) }
                __other => ::core::result::Result::Err(::optdsl::__private::hyper_type(Self::INFO, #n, #want_bool, __other)),
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

        impl ::optdsl::__private::UpdateRule for #name {
            const INFO: &'static ::optdsl::__private::RuleInfo = &::optdsl::__private::RuleInfo {
                name: #name_str,
                doc: #doc_text,
                hypers: &[#(#specs),*],
                buffers: &[#(#buffers),*],
                scalars: &[#(#scalars),*],
                inputs: &[#(#inputs),*],
                ir: #ir,
                source: #source,
            };

            #init

            #apply

            fn hyper(&self, __name: &str) -> ::core::option::Option<::optdsl::__private::HyperValue> {
                match __name {
                    #(#get)*
                    _ => ::core::option::Option::None,
                }
            }

            fn set_hyper(&mut self, __name: &str, __value: ::optdsl::__private::HyperValue) -> ::optdsl::__private::Result<()> {
                match __name {
                    #(#set)*
                    _ => ::core::result::Result::Err(::optdsl::__private::unknown_hyper(Self::INFO, __name)),
                }
            }
        }
    }
}

/// The full expansion of a checked, lowered rule.
pub fn expand(p: &Program) -> TokenStream {
    let g = Gen { p };
    shell(p, g.init(), g.apply())
}

/// What a rule with semantic errors expands to beside the errors: the type and
/// an impl whose bodies never run, so the user's other code still resolves and
/// only the real errors are shown.
pub fn fallback(rule: &RuleDef) -> TokenStream {
    let p = Program {
        name: rule.name.text.clone(),
        span: rule.name.span,
        docs: rule.docs.clone(),
        vis: rule.vis.clone(),
        source: rule.source.clone(),
        hypers: rule
            .hypers
            .iter()
            .filter(|h| syn::parse_str::<syn::Ident>(&h.name.text).is_ok())
            .map(|h| crate::lower::Hyper {
                name: h.name.text.clone(),
                span: h.name.span,
                default: match h.value.kind {
                    crate::ast::ExprKind::Bool(b) => Default::Bool(b),
                    _ => Default::Num(0.0),
                },
            })
            .collect(),
        buffers: Vec::new(),
        scalars: Vec::new(),
        inputs: Vec::new(),
        values: Vec::new(),
        w_out: None,
        buffer_out: Vec::new(),
        scalar_out: Vec::new(),
        stages: 0,
    };
    let mut seen = std::collections::HashSet::new();
    let mut p = p;
    p.hypers.retain(|h| seen.insert(h.name.clone()));
    if syn::parse_str::<syn::Ident>(&p.name).is_err() {
        return TokenStream::new();
    }
    shell(
        &p,
        quote! {
            fn init<F: ::optdsl::__private::Float>(&self, _: usize) -> ::optdsl::__private::State<F> {
                ::core::unreachable!("a rule with compile errors")
            }
        },
        quote! {
            fn apply<F: ::optdsl::__private::Float>(&self, _: &mut ::optdsl::__private::State<F>, _: &mut [F], _: &[F], _: &[&[F]]) {
                ::core::unreachable!("a rule with compile errors")
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_rules;

    fn program(tokens: TokenStream) -> Program {
        let rules = parse_rules(tokens).unwrap();
        crate::check::check(&rules[0]).unwrap();
        crate::lower::lower(&rules[0])
    }

    #[test]
    fn the_update_pass_of_gradient_descent() {
        let p = program(quote!(Descent { hyper lr = 0.5; w -= lr * g; }));
        let g = Gen { p: &p };
        let pass = g.plan(
            "__update_pass",
            vec![(Slot::W, p.w_out.unwrap())],
            Vec::new(),
        );
        let expected = quote! {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(unused, clippy::all)]
            unsafe fn __update_pass_avx2<F: ::optdsl::__private::Float>(__cf: &[F; 1usize], __cb: &[bool; 0usize], __w: &mut [F], __g: &[F]) -> [f64; 0usize] {
                __update_pass::<F>(__cf, __cb, __w, __g)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(unused, clippy::all)]
            unsafe fn __update_pass_avx512<F: ::optdsl::__private::Float>(__cf: &[F; 1usize], __cb: &[bool; 0usize], __w: &mut [F], __g: &[F]) -> [f64; 0usize] {
                __update_pass::<F>(__cf, __cb, __w, __g)
            }
            #[inline(always)]
            #[allow(unused, clippy::all)]
            fn __update_pass<F: ::optdsl::__private::Float>(__cf: &[F; 1usize], __cb: &[bool; 0usize], __w: &mut [F], __g: &[F]) -> [f64; 0usize] {
                let [__c0] = *__cf;
                let [] = *__cb;
                let __head = {
                    let __size = ::core::mem::size_of::<F>();
                    let __bytes = (64 - __w.as_ptr() as usize % 64) % 64;
                    if __bytes % __size == 0 { ::core::cmp::min(__bytes / __size, __w.len()) } else { 0 }
                };
                for (__k, (__wc, __gc)) in (__w[..__head]).chunks_exact_mut(1).zip((__g[..__head]).chunks_exact(1)).enumerate() {
                    let __i = 0usize;
                    let __lane = __k + 64usize - __head;
                    let __e1: F = __wc[__i];
                    let __e2: F = __gc[__i];
                    let __e4: F = __c0 * __e2;
                    let __e5: F = __e1 - __e4;
                    __wc[__i] = __e5;
                }
                for (__wc, __gc) in (__w[__head..]).chunks_exact_mut(64usize).zip((__g[__head..]).chunks_exact(64usize)) {
                    for __i in 0..64usize {
                        let __lane = __i;
                        let __e1: F = __wc[__i];
                        let __e2: F = __gc[__i];
                        let __e4: F = __c0 * __e2;
                        let __e5: F = __e1 - __e4;
                        __wc[__i] = __e5;
                    }
                }
                let __m = __head + (__w.len() - __head) / 64usize * 64usize;
                for (__k, (__wc, __gc)) in (__w[__m..]).chunks_exact_mut(1).zip((__g[__m..]).chunks_exact(1)).enumerate() {
                    let __i = 0usize;
                    let __lane = __k % 64usize;
                    let __e1: F = __wc[__i];
                    let __e2: F = __gc[__i];
                    let __e4: F = __c0 * __e2;
                    let __e5: F = __e1 - __e4;
                    __wc[__i] = __e5;
                }
                []
            }
        };
        assert_eq!(g.pass_fn(&pass).to_string(), expected.to_string());
    }

    #[test]
    fn per_step_scalars_are_f64_outside_the_loop() {
        let p = program(quote!(R { hyper b = 0.9; state m = 0; m = m / (1 - b^t); }));
        let g = Gen { p: &p };
        // 1 - b^t: b is value 0, t value 3, 1 value 6, b^t value 7, 1 - b^t
        // value 8; each computed once per step in f64, never in the loop.
        let pow = p
            .values
            .iter()
            .position(|v| matches!(v.op, Op::Binary(BinOp::Pow, ..)))
            .unwrap();
        assert_eq!(
            g.scalar_let(pow).to_string(),
            quote!(let __s7: f64 = f64::powf(__s0, __s3);).to_string()
        );
        assert_eq!(
            g.scalar_let(pow + 1).to_string(),
            quote!(let __s8: f64 = __s6 - __s7;).to_string()
        );
        let apply = g.apply().to_string();
        assert!(
            apply.contains("from_f64 (__s8)"),
            "cast once for the loop: {apply}"
        );
    }

    #[test]
    fn hypers_become_fields_with_defaults() {
        let p = program(quote!(pub R { hyper lr = 1e-3, nesterov = false; w -= lr * g; }));
        let out = expand(&p).to_string();
        let fields = quote!(
            pub struct R {
                #[doc = "Hyperparameter `lr` (default 0.001f64)."]
                pub lr: f64,
                #[doc = "Hyperparameter `nesterov` (default false)."]
                pub nesterov: bool,
            }
        );
        assert!(out.contains(&fields.to_string()), "{out}");
        let default = quote!(Self {
            lr: 0.001f64,
            nesterov: false,
        });
        assert!(out.contains(&default.to_string()), "{out}");
    }
}
