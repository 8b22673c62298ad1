//! Code generation of a pass's kernel: the loop body over zipped chunks of
//! every slice the pass touches, monomorphized for the element type and for
//! up to [`SPECIALIZED`] per-step booleans (const generics), in portable,
//! AVX2 and AVX-512 copies, and a chooser that picks a copy. The walk over
//! the tensor (blocks, peeling, threads, reduction order) is the runtime's
//! driver, not generated code.

use optdsl_lang::ast::UnOp;
use optdsl_lang::ir::{Id, Kind, Op, Program, Slot, Ty};
use optdsl_lang::passes::Pass;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

/// Per-step boolean conditions a pass is compiled for, as const generics (at
/// most this many; each doubles the copies). A buffer whose update is
/// `if cond { new } else { itself }` is then neither read nor written in the
/// copy where `cond` is false (Adam without AMSGrad never touches its max).
pub const SPECIALIZED: usize = 3;

/// Elements per chunk of the kernel's vector loop (the driver's `LANES`).
pub const LANES: usize = 64;

/// The path of the runtime's items that generated code names.
pub fn private() -> TokenStream {
    quote!(::optdsl::__private)
}

/// A number as an f64 literal (NaN and the infinities by name).
pub fn f64_lit(x: f64) -> TokenStream {
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

/// The per-step (f64 or bool) variable of value `id`.
pub fn s(id: Id) -> Ident {
    format_ident!("__s{}", id)
}
/// The per-element variable of value `id` inside a kernel.
fn e(id: Id) -> Ident {
    format_ident!("__e{}", id)
}
/// A per-step value as the kernel sees it (in `F`, or a bool).
fn c(id: Id) -> Ident {
    format_ident!("__c{}", id)
}

/// The slice of a slot inside a kernel.
fn block(slot: Slot) -> Ident {
    match slot {
        Slot::W => format_ident!("__w"),
        Slot::G => format_ident!("__g"),
        Slot::Buffer(i) => format_ident!("__b{}", i),
        Slot::Input(i) => format_ident!("__i{}", i),
    }
}

/// The chunk of a slot inside the loop.
fn chunk(slot: Slot) -> Ident {
    match slot {
        Slot::W => format_ident!("__wc"),
        Slot::G => format_ident!("__gc"),
        Slot::Buffer(i) => format_ident!("__b{}c", i),
        Slot::Input(i) => format_ident!("__i{}c", i),
    }
}

/// The binary operator's value, by the language's one definition
/// (`optdsl_lang::functions`).
pub fn binary(
    op: optdsl_lang::ast::BinOp,
    a_ty: Ty,
    a: TokenStream,
    b: TokenStream,
) -> TokenStream {
    let pr = private();
    let name = format_ident!("{}", format!("{op:?}"));
    if op.is_arith() {
        quote!(#pr::BinOp::#name.arith(#a, #b))
    } else if op.is_logic() || a_ty == Ty::Bool {
        quote!(#pr::BinOp::#name.logic(#a, #b))
    } else {
        quote!(#pr::BinOp::#name.compare(#a, #b))
    }
}

/// An operation's value from its operands' tokens (`operand`), per element
/// or, with `per_step`, as a per-step scalar in f64 (where `float` rounds to
/// the element type). Leaves (loads, hypers, literals) are the caller's.
pub fn operation(
    p: &Program,
    op: &Op,
    operand: &dyn Fn(Id) -> TokenStream,
    per_step: bool,
) -> TokenStream {
    match op {
        Op::Unary(UnOp::Neg, a) => {
            let a = operand(*a);
            quote!(-#a)
        }
        Op::Unary(UnOp::Not, a) => {
            let a = operand(*a);
            quote!(!#a)
        }
        Op::Binary(op, a, b) => binary(*op, p.values[*a].ty, operand(*a), operand(*b)),
        Op::Func(f, args) => {
            let f = func_path(*f);
            let x: Vec<TokenStream> = (0..3)
                .map(|k| operand(args[k.min(args.len() - 1)]))
                .collect();
            let (a, b, c) = (&x[0], &x[1], &x[2]);
            if per_step {
                quote!(#f.apply_scalar::<F>(#a, #b, #c))
            } else {
                quote!(#f.apply(#a, #b, #c))
            }
        }
        Op::Select(cnd, a, b) => {
            let (cnd, a, b) = (operand(*cnd), operand(*a), operand(*b));
            quote!(if #cnd { #a } else { #b })
        }
        _ => unreachable!("a leaf, not an operation"),
    }
}

/// The variant of a function or reduction, as a path.
pub fn func_path(f: optdsl_lang::Func) -> TokenStream {
    let pr = private();
    let v = format_ident!("{}", format!("{f:?}"));
    quote!(#pr::Func::#v)
}

/// The variant of a reduction, as a path.
pub fn reduction_path(r: optdsl_lang::Reduction) -> TokenStream {
    let pr = private();
    let v = format_ident!("{}", format!("{r:?}"));
    quote!(#pr::Reduction::#v)
}

struct Gen<'a> {
    p: &'a Program,
    /// Buffers are bfloat16 bits, converted as they are loaded.
    half: bool,
}

impl Gen<'_> {
    fn operand(&self, id: Id) -> TokenStream {
        if self.p.values[id].kind == Kind::Element {
            let x = e(id);
            quote!(#x)
        } else {
            let x = c(id);
            quote!(#x)
        }
    }

    /// `let __eN = ...;` for element value `id`, inside the loop.
    fn element_let(&self, id: Id) -> TokenStream {
        let p = self.p;
        let r = |a: Id| self.operand(a);
        let name = e(id);
        let v = &p.values[id];
        let rhs = match &v.op {
            op @ (Op::Param | Op::Grad | Op::Buffer(_) | Op::Input(_)) => {
                let x = chunk(op.slot().expect("a load"));
                if self.half && matches!(op, Op::Buffer(_)) {
                    let pr = private();
                    quote!(<F as #pr::Real>::from_bf16(#x[__i]))
                } else {
                    quote!(#x[__i])
                }
            }
            op @ (Op::Unary(..) | Op::Binary(..) | Op::Func(..) | Op::Select(..)) => {
                operation(p, op, &r, false)
            }
            Op::Draw(d, k) => {
                let pr = private();
                let v = format_ident!("{}", format!("{d:?}"));
                quote!(__draws.sample::<F>(#pr::Draw::#v, #k, __idx))
            }
            Op::Num(_)
            | Op::Bool(_)
            | Op::Hyper(_)
            | Op::Step
            | Op::ScalarState(_)
            | Op::Reduce(..) => {
                unreachable!("not a per-element value")
            }
        };
        if v.ty == Ty::Bool {
            quote!(let #name: bool = #rhs;)
        } else {
            quote!(let #name: F = #rhs;)
        }
    }
}

/// Whether a pass has a copy with its buffers as bfloat16 bits
/// ([`kernel_half`]): it touches a buffer, and every per-step boolean is a
/// const generic (so the stores its variant skips are known).
pub fn has_half(p: &Program, pass: &Pass) -> bool {
    pass.slots.iter().any(|s| matches!(s.0, Slot::Buffer(_)))
        && pass.bool_inputs(p).count() <= SPECIALIZED
}

/// The kernel functions of `pass` (named `name`, `name_avx2`, `name_avx512`)
/// and its chooser `name_pick`.
pub fn kernel(p: &Program, pass: &Pass, name: &Ident) -> TokenStream {
    kernel_with(p, pass, name, false)
}

/// The copy of a pass's kernel whose buffer slices are bfloat16 bits,
/// converted in registers (`Real::from_bf16` as loaded, `Real::to_bf16` as
/// stored; a buffer the variant leaves alone is not stored), named `name_h`
/// (the runtime's `KernelFnHalf`), for passes with [`has_half`].
pub fn kernel_half(p: &Program, pass: &Pass, name: &Ident) -> TokenStream {
    kernel_with(p, pass, &format_ident!("{}_h", name), true)
}

fn kernel_with(p: &Program, pass: &Pass, name: &Ident, half: bool) -> TokenStream {
    let pr = private();
    let g = Gen { p, half };
    let is_buffer = |slot: Slot| half && matches!(slot, Slot::Buffer(_));
    let nums: Vec<Ident> = pass.num_inputs(p).map(c).collect();
    let bools: Vec<Ident> = pass.bool_inputs(p).map(c).collect();
    let reads: Vec<Ident> = pass.reads().map(block).collect();
    let writes: Vec<Ident> = pass.written().map(block).collect();
    let nred = pass.reductions.len();
    let acc_refs: Vec<Ident> = (0..nred).map(|j| format_ident!("__acc{}", j)).collect();
    let accs: Vec<Ident> = (0..nred).map(|j| format_ident!("__a{}", j)).collect();
    let consts: Vec<Ident> = (0..bools.len().min(SPECIALIZED))
        .map(|k| format_ident!("__B{}", k))
        .collect();
    let fixed = bools
        .iter()
        .zip(&consts)
        .map(|(x, k)| quote!(let #x: bool = #k;));
    let chunks = |n: TokenStream| {
        let mut iter = TokenStream::new();
        let mut pat = TokenStream::new();
        for (k, &(slot, m)) in pass.slots.iter().enumerate() {
            let x = block(slot);
            let it = if m {
                quote!(#x.chunks_exact_mut(#n))
            } else {
                quote!(#x.chunks_exact(#n))
            };
            let ch = chunk(slot);
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
    let lets = pass.elements.iter().map(|&i| g.element_let(i));
    // Per choice of the const booleans (bit k: `__Bk`), whether each slot is
    // one the variant leaves alone (`Pass::idle_slots`).
    let nconst = consts.len();
    let idle_by_combo: Vec<Vec<bool>> = (0..1usize << nconst)
        .map(|combo| {
            let bits: Vec<bool> = (0..nconst).map(|k| combo >> k & 1 == 1).collect();
            pass.idle_slots(p, &bits)
        })
        .collect();
    let combo = if consts.is_empty() {
        quote!(0usize)
    } else {
        let terms = consts
            .iter()
            .enumerate()
            .map(|(k, b)| quote!((#b as usize) << #k));
        quote!(#(#terms)|*)
    };
    let stores = pass.writes.iter().map(|&(slot, id)| {
        let ch = chunk(slot);
        let v = g.operand(id);
        if is_buffer(slot) {
            let k = pass
                .slots
                .iter()
                .position(|s| s.0 == slot)
                .expect("a written slot is among the pass's slots");
            let idle = idle_by_combo.iter().map(|flags| flags[k]);
            quote! {
                if !([#(#idle),*][#combo]) {
                    #ch[__i] = <F as #pr::Real>::to_bf16(#v);
                }
            }
        } else {
            quote!(#ch[__i] = #v;)
        }
    });
    let accumulate = pass.reductions.iter().zip(&accs).map(|(&(r, _, arg), a)| {
        let r = reduction_path(r);
        let x = e(arg);
        quote!(#a[__lane] = #r.accumulate(#a[__lane], #x);)
    });
    let body = quote! {
        #(#lets)*
        #(#stores)*
        #(#accumulate)*
    };
    let (main_iter, main_pat) = chunks(quote!(#LANES));
    let (one_iter, one_pat) = chunks(quote!(1));
    let inner = format_ident!("{}_loop", name);
    let read_params: Vec<TokenStream> = pass
        .reads()
        .map(|slot| {
            let x = block(slot);
            if is_buffer(slot) {
                quote!(#x: &[u16])
            } else {
                quote!(#x: &[F])
            }
        })
        .collect();
    let write_params: Vec<TokenStream> = pass
        .written()
        .map(|slot| {
            let x = block(slot);
            if is_buffer(slot) {
                quote!(#x: &mut [u16])
            } else {
                quote!(#x: &mut [F])
            }
        })
        .collect();
    // The entry's slices: the plain ones from `__r`/`__wr`, bfloat16 buffers
    // (in the copy that has them) from `__hr`/`__hw`.
    let plain_reads: Vec<Ident> = pass.reads().filter(|&s| !is_buffer(s)).map(block).collect();
    let half_reads: Vec<Ident> = pass.reads().filter(|&s| is_buffer(s)).map(block).collect();
    let plain_writes: Vec<Ident> = pass
        .written()
        .filter(|&s| !is_buffer(s))
        .map(block)
        .collect();
    let half_writes: Vec<Ident> = pass
        .written()
        .filter(|&s| is_buffer(s))
        .map(block)
        .collect();
    let acc_params: Vec<TokenStream> = acc_refs.iter().map(|x| quote!(#x: &mut [F; 64])).collect();
    let avx2 = format_ident!("{}_avx2", name);
    let avx512 = format_ident!("{}_avx512", name);
    let pick = format_ident!("{}_pick", name);
    let generics = quote!(<F: #pr::Real #(, const #consts: bool)*>);
    let turbofish = quote!(::<F #(, #consts)*>);
    let params = if half {
        quote!(__cf: &[F], __cb: &[bool], __draws: #pr::Draws<'_>, __r: &[&[F]], __wr: &mut [&mut [F]], __hr: &[&[u16]], __hw: &mut [&mut [u16]], __accs: &mut [[F; 64]], __walk: #pr::Walk)
    } else {
        quote!(__cf: &[F], __cb: &[bool], __draws: #pr::Draws<'_>, __r: &[&[F]], __wr: &mut [&mut [F]], __accs: &mut [[F; 64]], __walk: #pr::Walk)
    };
    let fn_type = if half {
        quote!(#pr::KernelFnHalf<F>)
    } else {
        quote!(#pr::KernelFn<F>)
    };
    let nspec = consts.len();
    let mut arms = Vec::new();
    for combo in 0..(1usize << nspec) {
        let bits: Vec<bool> = (0..nspec).map(|k| combo >> k & 1 == 1).collect();
        let tf = quote!(::<F #(, #bits)*>);
        arms.push(quote! {
            #[cfg(target_arch = "x86_64")]
            (#pr::Simd::Avx512 #(, #bits)*) => #avx512 #tf as #fn_type,
            #[cfg(target_arch = "x86_64")]
            (#pr::Simd::Avx2 #(, #bits)*) => #avx2 #tf as #fn_type,
            (_ #(, #bits)*) => #name #tf as #fn_type,
        });
    }
    let keys = (0..nspec).map(|k| quote!(__cb[#k]));
    // The index of an element in the segment, which keys its random draws
    // (computed only by passes that draw).
    let draws = pass
        .elements
        .iter()
        .any(|&i| p.values[i].op.draw().is_some());
    let (draw_param, draw_arg) = if draws {
        (quote!(__draws: #pr::Draws<'_>,), quote!(__draws,))
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    let (chunk_index, chunk_pat, single_index) = if draws {
        (
            quote!(let __idx = __c * #LANES + __i;),
            quote!((__c, #main_pat)),
            quote!(let __idx = __k;),
        )
    } else {
        (TokenStream::new(), main_pat.clone(), TokenStream::new())
    };
    let main_iter = if draws {
        quote!(#main_iter.enumerate())
    } else {
        main_iter
    };
    let loop_params = quote!(#(#nums: F,)* #(#bools: bool,)* #draw_param #(#read_params,)* #(#write_params,)* #(#acc_params,)* __walk: #pr::Walk);
    let loop_args =
        quote!(#(#nums,)* #(#bools,)* #draw_arg #(#reads,)* #(#writes,)* #(#acc_refs,)* __walk);
    let inner_avx2 = format_ident!("{}_loop_avx2", name);
    let inner_avx512 = format_ident!("{}_loop_avx512", name);
    let inner_portable = format_ident!("{}_loop_portable", name);
    // A uniform entry for the driver: the per-step values and slices taken
    // apart, then the loop of one SIMD level called with each slice as an
    // argument of its own.
    let half_entry = if half {
        quote! {
            let &[#(#half_reads),*] = __hr else { ::core::unreachable!("bfloat16 slices read") };
            let [#(#half_writes),*] = __hw else { ::core::unreachable!("bfloat16 slices written") };
            #(let #half_writes: &mut [u16] = &mut **#half_writes;)*
        }
    } else {
        TokenStream::new()
    };
    let entry = |f: &Ident, target: &Ident, unsafety: TokenStream, attrs: TokenStream| {
        quote! {
            #attrs
            #[allow(unused, clippy::all)]
            #unsafety fn #f #generics(#params) {
                let &[#(#nums),*] = __cf else { ::core::unreachable!("per-step numbers") };
                let &[#(#bools),*] = __cb else { ::core::unreachable!("per-step booleans") };
                let &[#(#plain_reads),*] = __r else { ::core::unreachable!("slices read") };
                let [#(#plain_writes),*] = __wr else { ::core::unreachable!("slices written") };
                #half_entry
                let [#(#acc_refs),*] = __accs else { ::core::unreachable!("accumulators") };
                #(let #plain_writes: &mut [F] = &mut **#plain_writes;)*
                #target #turbofish(#loop_args)
            }
        }
    };
    let x86 = quote!(#[cfg(target_arch = "x86_64")]);
    let entry_avx2 = entry(&avx2, &inner_avx2, quote!(unsafe), x86.clone());
    let entry_avx512 = entry(&avx512, &inner_avx512, quote!(unsafe), x86.clone());
    let entry_portable = entry(name, &inner_portable, quote!(), quote!());
    quote! {
        // The loop as a function of its own per SIMD level, never inlined, so
        // that its slices are arguments the compiler knows do not overlap
        // (what lets it vectorize and drop the store of a value just loaded,
        // as when a switched-off buffer keeps its value). The copies differ
        // only in instructions: no fused multiply-add, so results are
        // identical.
        #[inline(always)]
        #[allow(unused, clippy::all)]
        fn #inner #generics(#loop_params) {
            #(#fixed)*
            #(let mut #accs: [F; 64] = *#acc_refs;)*
            match __walk {
                #pr::Walk::Chunks => {
                    for #chunk_pat in #main_iter {
                        for __i in 0..#LANES {
                            let __lane = __i;
                            #chunk_index
                            #body
                        }
                    }
                }
                #pr::Walk::Single { lane0: __lane0 } => {
                    for (__k, #one_pat) in #one_iter.enumerate() {
                        let __i = 0usize;
                        let __lane = __lane0 + __k;
                        #single_index
                        #body
                    }
                }
            }
            #(*#acc_refs = #accs;)*
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        #[allow(unused, clippy::all)]
        unsafe fn #inner_avx2 #generics(#loop_params) {
            #inner #turbofish(#loop_args)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        #[inline(never)]
        #[allow(unused, clippy::all)]
        unsafe fn #inner_avx512 #generics(#loop_params) {
            #inner #turbofish(#loop_args)
        }
        #[inline(never)]
        #[allow(unused, clippy::all)]
        fn #inner_portable #generics(#loop_params) {
            #inner #turbofish(#loop_args)
        }
        #entry_avx2
        #entry_avx512
        #entry_portable
        #[allow(unused, clippy::all)]
        fn #pick<F: #pr::Real>(__simd: #pr::Simd, __cb: &[bool]) -> #fn_type {
            match (__simd #(, #keys)*) {
                #(#arms)*
            }
        }
    }
}
