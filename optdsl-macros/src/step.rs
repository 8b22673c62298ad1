//! Code generation of a rule's step: the per-step scalars in f64 (straight
//! code, outside every loop), one call of the runtime's driver per pass with
//! the pass's kernel, and the rule's `init`.

use crate::kernel::{
    f64_lit, has_half, kernel, kernel_half, operation, private, reduction_path, s,
};
use optdsl_lang::ir::{Id, Kind, Op, Program, Slot, Ty};
use optdsl_lang::passes::{Pass, PassKind, StepPlan};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The whole slice of a slot in `apply`.
fn all(slot: Slot) -> Ident {
    match slot {
        Slot::W => format_ident!("__wa"),
        Slot::G => format_ident!("__ga"),
        Slot::Buffer(i) => format_ident!("__ba{}", i),
        Slot::Input(i) => format_ident!("__ia{}", i),
    }
}

/// The right-hand side of per-step scalar `id`, in f64 (or a bool).
fn scalar_rhs(p: &Program, id: Id) -> TokenStream {
    let r = |a: Id| {
        let x = s(a);
        quote!(#x)
    };
    match &p.values[id].op {
        Op::Num(bits) => f64_lit(f64::from_bits(*bits)),
        Op::Bool(b) => quote!(#b),
        Op::Hyper(i) => {
            let f = format_ident!("{}", p.hypers[*i].name.text);
            quote!(self.#f)
        }
        Op::Step => quote!(__t),
        Op::ScalarState(i) => quote!(__state.scalars[#i]),
        op @ (Op::Unary(..) | Op::Binary(..) | Op::Func(..) | Op::Select(..)) => {
            operation(p, op, &r, true)
        }
        Op::Param | Op::Grad | Op::Buffer(_) | Op::Input(_) | Op::Reduce(..) | Op::Draw(..) => {
            unreachable!("not a per-step scalar")
        }
    }
}

/// `let __sN: f64 = ...;` (or `bool`).
pub fn scalar_let(p: &Program, id: Id) -> TokenStream {
    let name = s(id);
    let rhs = scalar_rhs(p, id);
    if p.values[id].ty == Ty::Bool {
        quote!(let #name: bool = #rhs;)
    } else {
        quote!(let #name: f64 = #rhs;)
    }
}

fn pass_name(pass: &Pass) -> Ident {
    match pass.kind {
        PassKind::Init => format_ident!("__init_pass"),
        PassKind::Reduce(k) => format_ident!("__reduce_pass{}", k),
        PassKind::Update => format_ident!("__update_pass"),
    }
}

/// The driver's run of `pass` and the reductions it defines.
fn pass_call(p: &Program, pass: &Pass) -> TokenStream {
    let pr = private();
    let pick = format_ident!("{}_pick", pass_name(pass));
    let nums = pass.num_inputs(p).map(s);
    let bools = pass.bool_inputs(p).map(s);
    let nn = pass.num_inputs(p).count();
    let nb = pass.bool_inputs(p).count();
    let reads = pass.reads().map(|slot| {
        let x = all(slot);
        quote!(&#x[..])
    });
    let writes = pass.written().map(|slot| {
        let x = all(slot);
        quote!(&mut #x[..])
    });
    let packed_reads = pass.reads().map(|slot| match slot {
        Slot::Buffer(i) => {
            let x = format_ident!("__pk{}", i);
            quote!(#x.as_deref())
        }
        _ => quote!(::core::option::Option::None),
    });
    let packed_writes = pass.written().map(|slot| match slot {
        Slot::Buffer(i) => {
            let x = format_ident!("__pk{}", i);
            quote!(#x.as_deref_mut())
        }
        _ => quote!(::core::option::Option::None),
    });
    let nr = pass.reductions.len();
    let kinds: Vec<TokenStream> = pass
        .reductions
        .iter()
        .map(|r| reduction_path(r.0))
        .collect();
    let heavy = pass.heavy;
    let finish = pass.reductions.iter().enumerate().map(|(j, &(r, id, _))| {
        let x = s(id);
        let r = reduction_path(r);
        quote!(let #x: f64 = #r.finish(__red[#j], __n);)
    });
    let ids: Vec<Ident> = pass.reductions.iter().map(|r| s(r.1)).collect();
    // Per choice of the pass's booleans (bit k: boolean k), the slices its
    // variant leaves alone, as the driver's bit masks over reads and writes
    // (compressed ones are then neither decoded nor encoded); past
    // IDLE_BOOLS booleans, none.
    use optdsl_lang::passes::IDLE_BOOLS;
    let idle_table: Vec<TokenStream> = if nb <= IDLE_BOOLS {
        (0..1usize << nb)
            .map(|combo| {
                let bits: Vec<bool> = (0..nb).map(|k| combo >> k & 1 == 1).collect();
                let (mr, mw) = pass.idle_masks(p, &bits);
                quote!(#pr::Idle { reads: #mr, writes: #mw })
            })
            .collect()
    } else {
        vec![quote!(#pr::Idle::NONE)]
    };
    let idle_index = if nb <= IDLE_BOOLS {
        quote!(__cb
            .iter()
            .enumerate()
            .fold(0usize, |__m, (__k, &__b)| __m | usize::from(__b) << __k))
    } else {
        quote!(0usize)
    };
    // With every buffer of the pass bfloat16 (to nearest even), the kernel's
    // copy that converts them in registers, without staging.
    let (half_call, half_cond) = if has_half(p, pass) {
        let pick_h = format_ident!("{}_h_pick", pass_name(pass));
        let is_buf = |s: &Slot| matches!(s, Slot::Buffer(_));
        let pk = |slot: Slot| match slot {
            Slot::Buffer(i) => format_ident!("__pk{}", i),
            _ => unreachable!("only buffers are packed"),
        };
        // Each buffer with whether this variant leaves it alone (a deferred
        // one may then stand in the half pass, as no bytes).
        let reads_at = |slot: Slot| pass.reads().position(|r| r == slot);
        let writes_at = |slot: Slot| pass.written().position(|r| r == slot);
        let all_bufs = pass.slots.iter().filter(|s| is_buf(&s.0)).map(|s| {
            let x = pk(s.0);
            let idle = match (reads_at(s.0), writes_at(s.0)) {
                (Some(k), _) => quote!(__idle.reads >> #k & 1 == 1),
                (_, Some(k)) => quote!(__idle.writes >> #k & 1 == 1),
                _ => quote!(false),
            };
            quote!((#x.as_deref(), #idle))
        });
        let plain_reads = pass.reads().filter(|s| !is_buf(s)).map(|slot| {
            let x = all(slot);
            quote!(&#x[..])
        });
        let plain_writes = pass.written().filter(|s| !is_buf(s)).map(|slot| {
            let x = all(slot);
            quote!(&mut #x[..])
        });
        let half_reads = pass.reads().filter(is_buf).map(|slot| {
            let x = pk(slot);
            quote!(#pr::bf16_bits(#x.as_deref()))
        });
        let half_writes = pass.written().filter(is_buf).map(|slot| {
            let x = pk(slot);
            quote!(#pr::bf16_bits_mut(#x.as_deref_mut()))
        });
        (
            Some(quote! {
                #pr::run_pass_half(
                    |__simd| #pick_h::<F>(__simd, &__cb),
                    (&__cf, &__cb, __draws),
                    #heavy,
                    __n,
                    (&[#(#plain_reads),*], &mut [#(#plain_writes),*]),
                    (&[#(#half_reads),*], &mut [#(#half_writes),*]),
                    &[#(#kinds),*],
                    &mut __red,
                )
            }),
            quote!(#pr::all_bf16(&[#(#all_bufs),*])),
        )
    } else {
        (None, quote!())
    };
    let staged = quote! {
    #pr::run_pass_packed_idle(
                // SAFETY: the driver hands the chooser only levels this CPU has.
                |__simd| unsafe { #pr::FnKernel::new(#pick::<F>(__simd, &__cb), &__cf, &__cb).with_draws(__draws) },
                #heavy,
                __n,
                __step,
                (&[#(#reads),*], &mut [#(#writes),*]),
                (&[#(#packed_reads),*], &mut [#(#packed_writes),*]),
                __idle,
                &[#(#kinds),*],
                &mut __red,
            )
        };
    let dispatch = match half_call {
        Some(half) => quote!(if #half_cond { #half } else { #staged }),
        None => staged,
    };
    let call = quote! {
        let __cf: [F; #nn] = [#(<F as #pr::Real>::from_f64(#nums)),*];
        let __cb: [bool; #nb] = [#(#bools),*];
        let mut __red = [0.0f64; #nr];
        const __IDLE: &[#pr::Idle] = &[#(#idle_table),*];
        let __idle = __IDLE[#idle_index];
        let __ran = #dispatch;
        if let ::core::result::Result::Err(__e) = __ran {
            ::core::unreachable!("checked by optdsl-lang: {}", __e.0);
        }
    };
    if nr == 0 {
        quote!({ #call })
    } else {
        quote! {
            let (#(#ids,)*) = { #call #(#finish)* (#(#ids,)*) };
        }
    }
}

/// `UpdateRule::apply`: the kernels, then the step.
pub fn apply(p: &Program, plan: &StepPlan) -> TokenStream {
    let pr = private();
    let passes: Vec<&Pass> = plan
        .init
        .iter()
        .chain(&plan.reduces)
        .chain(&plan.update)
        .collect();
    let kernels = passes.iter().map(|pass| {
        let plain = kernel(p, pass, &pass_name(pass));
        if has_half(p, pass) {
            let half = kernel_half(p, pass, &pass_name(pass));
            quote!(#plain #half)
        } else {
            plain
        }
    });
    let scalars_at = |stage: usize| -> Vec<TokenStream> {
        plan.scalars
            .get(stage)
            .map(|ids| ids.iter().map(|&i| scalar_let(p, i)).collect())
            .unwrap_or_default()
    };
    let mut body = Vec::new();
    body.extend(scalars_at(0));
    if let Some(ip) = &plan.init {
        let call = pass_call(p, ip);
        body.push(quote!(if __first { #call }));
    }
    for (k, pass) in plan.reduces.iter().enumerate() {
        body.push(pass_call(p, pass));
        body.extend(scalars_at(k + 1));
    }
    if let Some(u) = &plan.update {
        body.push(pass_call(p, u));
    }
    for (i, out) in p.scalar_out.iter().enumerate() {
        if let Some(id) = out {
            let x = s(*id);
            body.push(quote!(__state.scalars[#i] = #x;));
        }
    }
    let bufs: Vec<Ident> = (0..p.buffers.len()).map(|i| all(Slot::Buffer(i))).collect();
    let pks: Vec<Ident> = (0..p.buffers.len())
        .map(|i| format_ident!("__pk{}", i))
        .collect();
    let nb = p.buffers.len();
    let inputs: Vec<Ident> = (0..p.inputs.len()).map(|i| all(Slot::Input(i))).collect();
    // The keys of the rule's random streams (optdsl_lang::random), once a step.
    let streams = p.streams();
    let draws = if streams == 0 {
        quote!(let __draws = #pr::Draws::NONE;)
    } else {
        let ns = streams as usize;
        quote! {
            let __seed = __state.draws.unwrap_or_default();
            let __keys: [#pr::Key; #ns] = ::core::array::from_fn(|__k| {
                #pr::stream_key(__seed.seed, __seed.tensor, __k as u32)
            });
            let __draws = #pr::Draws { keys: &__keys, step: __step, first: __seed.offset };
        }
    };
    // Buffers left out while no step needs them are stored again when
    // the boolean hyperparameters change so that one might.
    let hyper_bools = p.hypers.iter().map(|h| match h.default {
        optdsl_lang::typed::Default::Bool(_) => {
            let f = format_ident!("{}", h.name.text);
            quote!(::core::option::Option::Some(self.#f))
        }
        optdsl_lang::typed::Default::Num(_) => quote!(::core::option::Option::None),
    });
    let restore = if p.buffers.is_empty() {
        quote!()
    } else {
        quote!(__state.restore_needed(<Self as #pr::UpdateRule>::INFO, &[#(#hyper_bools),*]);)
    };
    quote! {
        #[allow(unused, clippy::all)]
        fn apply<F: #pr::Float>(&self, __state: &mut #pr::State<F>, __wa: &mut [F], __ga: &[F], __inputs: &[&[F]]) {
            #(#kernels)*
            let &[#(#inputs),*] = __inputs else {
                ::core::unreachable!("the inputs were checked")
            };
            let __first = __state.t == 0;
            __state.t += 1;
            let __step = __state.t;
            let __t = __step as f64;
            let __n = __wa.len();
            #draws
            #restore
            let [#(#bufs),*] = &mut __state.buffers[..] else {
                ::core::unreachable!("the state was checked")
            };
            let [#(mut #pks),*] = #pr::packed_views::<#nb>(&mut __state.packed);
            #(#body)*
        }
    }
}

/// `UpdateRule::apply` of a rule with shapes: the runtime's tensor executor
/// runs the rule's checked body (the same code runs it read from text).
pub fn tensor_apply(p: &Program) -> TokenStream {
    let pr = private();
    let hypers = p.hypers.iter().map(|h| {
        let f = format_ident!("{}", h.name.text);
        match h.default {
            optdsl_lang::typed::Default::Num(_) => quote!(#pr::HyperValue::Num(self.#f)),
            optdsl_lang::typed::Default::Bool(_) => quote!(#pr::HyperValue::Bool(self.#f)),
        }
    });
    quote! {
        #[allow(unused, clippy::all)]
        fn apply<F: #pr::Float>(&self, __state: &mut #pr::State<F>, __wa: &mut [F], __ga: &[F], __inputs: &[&[F]]) {
            let __hypers = [#(#hypers),*];
            #pr::tensor_apply(<Self as #pr::UpdateRule>::INFO, &__hypers, __state, __wa, __ga, __inputs);
        }
    }
}

/// `UpdateRule::init`: the initial values that are not per element, then a
/// state with every buffer filled (per-element ones by the first step).
pub fn init(p: &Program, plan: &StepPlan) -> TokenStream {
    let pr = private();
    let at_init = |id: Id| p.values[id].kind != Kind::Element;
    let lets = plan.init_scalars.iter().map(|&i| scalar_let(p, i));
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
        fn init<F: #pr::Float>(&self, __len: usize) -> #pr::State<F> {
            #(#lets)*
            #pr::State::new(
                <Self as #pr::UpdateRule>::INFO,
                __len,
                &[#(#buf_vals),*],
                &[#(#scalar_vals),*],
            )
        }
    }
}
