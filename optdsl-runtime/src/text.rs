//! Rules from text at run time: a file of rules in the syntax that goes
//! inside `optimizer! { ... }`, compiled by `optdsl_lang`, each pass turned
//! into machine code by the JIT (`crate::jit`, the `jit` feature) or run by
//! the block interpreter ([`crate::interp`]), on the same driver as compiled
//! rules, so a text rule gives the same bits as the same rule compiled.
//!
//! ```
//! use optdsl_runtime::{DynRule, Rules};
//! let rules = Rules::parse("pub Descent { hyper lr = 0.5; w -= lr * g; }").unwrap();
//! let rule = &rules[0];
//! let mut w = vec![1.0f64, 2.0];
//! let mut state = rule.init_f64(w.len());
//! rule.step_f64(&mut state, &mut w, &[1.0, -1.0], &[]).unwrap();
//! assert_eq!(w, [0.5, 2.5]);
//! ```

use crate::driver::{run_pass_packed_idle, Draws, Idle};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::hyper::scalars_of;
use crate::interp::{Interp, Tape};
use crate::quant::Packed;
use crate::rule::{DynRule, HyperSpec, HyperValue, ProgramRef, RuleInfo, State};
use optdsl_lang::eval::{scalar, Leaves, Scalar};
use optdsl_lang::ir::{Program, Slot};
use optdsl_lang::passes::{plan, Pass, StepPlan};
use optdsl_lang::typed::Default;
use optdsl_lang::Diagnostic;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// A rule read from text: its description, its step plan and its current
/// hyperparameters.
#[derive(Clone)]
pub struct TextRule {
    info: &'static RuleInfo,
    plan: Arc<StepPlan>,
    hypers: Vec<HyperValue>,
    /// Whether its passes may run as machine code ([`crate::jit`]).
    jit: bool,
}

impl fmt::Debug for TextRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextRule")
            .field("name", &self.info.name)
            .field("hypers", &self.hypers)
            .finish()
    }
}

/// The errors of a rule file: every diagnostic, with the text they point
/// into; `Display` renders them as rustc renders its own errors.
#[derive(Debug, Clone)]
pub struct RuleErrors {
    /// The file's name as shown (`FILE:LINE:COL`).
    pub file: String,
    /// The text.
    pub text: String,
    /// Every error, in text order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out = optdsl_lang::render(&self.file, &self.text, &self.diagnostics);
        f.write_str(out.trim_end())
    }
}

impl std::error::Error for RuleErrors {}

/// Rule files: parsing text into rules that run at run time.
pub struct Rules;

impl Rules {
    /// Every rule in `text` (the syntax inside `optimizer! { ... }`), or
    /// every error found, rendered against the name `<text>`.
    pub fn parse(text: &str) -> std::result::Result<Vec<TextRule>, RuleErrors> {
        Self::parse_named("<text>", text)
    }

    /// [`Rules::parse`] with the file name diagnostics show.
    pub fn parse_named(file: &str, text: &str) -> std::result::Result<Vec<TextRule>, RuleErrors> {
        let programs = optdsl_lang::compile(text).map_err(|diagnostics| RuleErrors {
            file: file.to_string(),
            text: text.to_string(),
            diagnostics,
        })?;
        Ok(programs.into_iter().map(TextRule::new).collect())
    }

    /// Every rule of the file at `path`; an unreadable file or a rule error
    /// is an [`Error`] whose message is the rendered diagnostics.
    pub fn load(path: &Path) -> Result<Vec<TextRule>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse_named(&path.display().to_string(), &text)
            .map_err(|e| Error::Rule(e.to_string()))
    }
}

/// Descriptions of text rules live as long as the process (rules are
/// `&'static RuleInfo` like compiled ones); one per distinct rule text, so
/// reading the same file again takes no more memory.
fn leak_info(p: Program) -> &'static RuleInfo {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static RuleInfo>>> = OnceLock::new();
    let key = format!("{}\u{0}{}", p.name.text, p.source);
    let mut cache = CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(info) = cache.get(&key) {
        return info;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let names =
        |v: Vec<&'static str>| -> &'static [&'static str] { Box::leak(v.into_boxed_slice()) };
    let hypers: Vec<HyperSpec> = p
        .hypers
        .iter()
        .map(|h| HyperSpec {
            name: leak(&h.name.text),
            default: match h.default {
                Default::Num(x) => HyperValue::Num(x),
                Default::Bool(b) => HyperValue::Bool(b),
            },
            range: h.range,
        })
        .collect();
    let doc = p
        .docs
        .iter()
        .map(|d| d.trim())
        .collect::<Vec<_>>()
        .join("\n");
    let info = RuleInfo {
        name: leak(&p.name.text),
        doc: leak(&doc),
        hypers: Box::leak(hypers.into_boxed_slice()),
        buffers: names(p.buffers.iter().map(|b| leak(&b.name)).collect()),
        scalars: names(p.scalars.iter().map(|b| leak(&b.name)).collect()),
        inputs: names(p.inputs.iter().map(|b| leak(b)).collect()),
        source: leak(&p.source),
        program: ProgramRef::Text(Box::leak(Box::new(p))),
    };
    let info: &'static RuleInfo = Box::leak(Box::new(info));
    cache.insert(key, info);
    info
}

impl TextRule {
    /// The rule of a lowered program, with its defaults.
    pub fn new(p: Program) -> TextRule {
        let info = leak_info(p);
        TextRule {
            info,
            plan: Arc::new(plan(info.program())),
            hypers: info.hypers.iter().map(|h| h.default).collect(),
            jit: true,
        }
    }

    /// The rule with its passes compiled to machine code (`on`, the default
    /// where the `jit` feature is built and `OPTDSL_JIT` is not `0`) or run
    /// by the block interpreter; the bits are the same either way.
    pub fn with_jit(mut self, on: bool) -> TextRule {
        self.jit = on;
        self
    }

    /// Whether its passes run as machine code (see [`TextRule::with_jit`]).
    pub fn jit(&self) -> bool {
        self.jit && jit_enabled()
    }

    /// The rule's name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    fn init<F: Float>(&self, len: usize) -> State<F> {
        let p = self.info.program();
        let hypers = scalars_of(&self.hypers);
        let leaves = Leaves {
            hypers: &hypers,
            t: 0.0,
            scalars: &[],
        };
        let mut known = vec![None; p.values.len()];
        for &id in &self.plan.init_scalars {
            known[id] = scalar::<F>(p, id, &known, &leaves);
        }
        let value = |id: usize| known[id].map_or(0.0, Scalar::num);
        let bufs: Vec<f64> = p.buffers.iter().map(|b| value(b.init)).collect();
        let scalars: Vec<f64> = p.scalars.iter().map(|b| value(b.init)).collect();
        State::new(self.info, len, &bufs, &scalars)
    }

    fn step<F: Float>(
        &self,
        state: &mut State<F>,
        w: &mut [F],
        g: &[F],
        inputs: &[&[F]],
    ) -> Result<()> {
        if self.info.program().tensor.is_some() {
            return crate::tensor::step(self.info, &self.hypers, state, w, g, inputs);
        }
        state.check_step(self.info, w.len(), g.len(), inputs)?;
        let bools: Vec<Option<bool>> = self.hypers.iter().map(|h| h.as_bool()).collect();
        state.restore_needed(self.info, &bools);
        let p = self.info.program();
        let first = state.t == 0;
        state.t += 1;
        let n = w.len();
        let hypers = scalars_of(&self.hypers);
        let mut known: Vec<Option<Scalar>> = vec![None; p.values.len()];
        let old_scalars = state.scalars.clone();
        let leaves = Leaves {
            hypers: &hypers,
            t: state.t as f64,
            scalars: &old_scalars,
        };
        let compute = |known: &mut Vec<Option<Scalar>>, stage: usize| {
            for &id in self
                .plan
                .scalars
                .get(stage)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                known[id] = scalar::<F>(p, id, known, &leaves);
            }
        };
        compute(&mut known, 0);
        let seed = state.draws.unwrap_or_default();
        let keys = seed.keys(p);
        let draws = seed.draws(&keys, state.t);
        let on = (self.jit(), draws);
        if first {
            if let Some(pass) = &self.plan.init {
                run(p, pass, &known, state, w, g, inputs, on)?;
            }
        }
        for (k, pass) in self.plan.reduces.iter().enumerate() {
            let red = run(p, pass, &known, state, w, g, inputs, on)?;
            for (j, &(r, id, _)) in pass.reductions.iter().enumerate() {
                known[id] = Some(Scalar::Num(r.finish(red[j], n)));
            }
            compute(&mut known, k + 1);
        }
        if let Some(pass) = &self.plan.update {
            run(p, pass, &known, state, w, g, inputs, on)?;
        }
        for (i, out) in p.scalar_out.iter().enumerate() {
            if let Some(x) = out.and_then(|id| known[id]) {
                state.scalars[i] = x.num();
            }
        }
        Ok(())
    }
}

/// Whether the JIT is built and on for this process (`OPTDSL_JIT` is not `0`).
fn jit_enabled() -> bool {
    #[cfg(feature = "jit")]
    return crate::jit::enabled();
    #[cfg(not(feature = "jit"))]
    false
}

/// Runs one pass of a text rule through the driver (as machine code if
/// `jit`, with its random draws keyed by `draws`); the reductions' combined
/// partial results.
#[allow(clippy::too_many_arguments)]
fn run<F: Float>(
    p: &'static Program,
    pass: &Pass,
    known: &[Option<Scalar>],
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
    (jit, draws): (bool, Draws<'_>),
) -> Result<Vec<f64>> {
    let n = w.len();
    let step = state.t;
    let mut w_slot: Option<&mut [F]> = Some(w);
    let mut buffers: Vec<Option<&mut Vec<F>>> = state.buffers.iter_mut().map(Some).collect();
    let mut packed: Vec<Option<&mut Packed>> =
        state.packed.iter_mut().map(Option::as_mut).collect();
    let mut reads: Vec<&[F]> = Vec::new();
    let mut writes: Vec<&mut [F]> = Vec::new();
    let mut packed_reads: Vec<Option<&Packed>> = Vec::new();
    let mut packed_writes: Vec<Option<&mut Packed>> = Vec::new();
    // Slots in order; each is read or written, never both.
    for &(slot, written) in &pass.slots {
        let (taken, pk): (Option<&mut [F]>, Option<&mut Packed>) = match slot {
            Slot::W => (w_slot.take(), None),
            Slot::Buffer(i) => (
                buffers
                    .get_mut(i)
                    .and_then(Option::take)
                    .map(Vec::as_mut_slice),
                packed.get_mut(i).and_then(Option::take),
            ),
            Slot::G => {
                reads.push(g);
                packed_reads.push(None);
                continue;
            }
            Slot::Input(i) => {
                reads.push(inputs[i]);
                packed_reads.push(None);
                continue;
            }
        };
        let Some(x) = taken else { continue };
        if written {
            writes.push(x);
            packed_writes.push(pk);
        } else {
            reads.push(x);
            packed_reads.push(pk.map(|p| &*p));
        }
    }
    let kinds: Vec<optdsl_lang::Reduction> = pass.reductions.iter().map(|r| r.0).collect();
    let mut out = vec![0.0; kinds.len()];
    // The slices this step's booleans switch off, as compiled rules skip them
    // (only compressed ones cost anything to keep, so only they are looked for).
    let any_packed =
        packed_reads.iter().any(Option::is_some) || packed_writes.iter().any(Option::is_some);
    let bools = || -> Option<Vec<bool>> {
        pass.bool_inputs(p)
            .map(|id| match known.get(id) {
                Some(Some(Scalar::Bool(b))) => Some(*b),
                _ => None,
            })
            .collect()
    };
    let idle = match any_packed.then(bools).flatten() {
        Some(b) => Idle::of_pass(pass, p, &b),
        None => Idle::NONE,
    };
    // The pass compiled to machine code, or else interpreted.
    #[cfg(feature = "jit")]
    let compiled = jit
        .then(|| crate::jit::JitPass::<F>::new(p, pass, known))
        .flatten();
    #[cfg(not(feature = "jit"))]
    let _ = jit;
    let done = {
        #[cfg(feature = "jit")]
        if let Some(code) = &compiled {
            run_pass_packed_idle(
                |_| code.kernel(),
                pass.heavy,
                n,
                step,
                (&reads, &mut writes),
                (&packed_reads, &mut packed_writes),
                idle,
                &kinds,
                &mut out,
            )
        } else {
            interpret(
                p,
                pass,
                (known, draws),
                (n, step),
                (&reads, &mut writes),
                (&packed_reads, &mut packed_writes, idle),
                &kinds,
                &mut out,
            )
        }
        #[cfg(not(feature = "jit"))]
        interpret(
            p,
            pass,
            (known, draws),
            (n, step),
            (&reads, &mut writes),
            (&packed_reads, &mut packed_writes, idle),
            &kinds,
            &mut out,
        )
    };
    done.map_err(|e| Error::Invalid {
        what: format!("rule {}", p.name.text),
        reason: e.0,
    })?;
    Ok(out)
}

/// The slices of a pass and the compressed buffers that stand for some.
type PassSlices<'a, 'b, F> = (&'a [&'b [F]], &'a mut [&'b mut [F]]);
/// The compressed buffers of a pass, by position among its reads and writes,
/// and the slices its variant leaves alone.
type PassPacked<'a, 'b> = (
    &'a [Option<&'b Packed>],
    &'a mut [Option<&'b mut Packed>],
    Idle,
);

/// Runs one pass on the block interpreter (`known`: the per-step values,
/// `draws`: what keys its random draws; `(n, step)`: the tensor's length and
/// the step, as [`run_pass_packed`] takes them).
#[allow(clippy::too_many_arguments)]
fn interpret<F: Float>(
    p: &Program,
    pass: &Pass,
    (known, draws): (&[Option<Scalar>], Draws<'_>),
    (n, step): (usize, u64),
    (reads, writes): PassSlices<'_, '_, F>,
    (packed_reads, packed_writes, idle): PassPacked<'_, '_>,
    kinds: &[optdsl_lang::Reduction],
    out: &mut [f64],
) -> std::result::Result<(), crate::driver::PassShapeError> {
    let tape = Tape::<F>::new(p, pass, known).with_draws(draws);
    run_pass_packed_idle(
        |simd| Interp::new(&tape, simd),
        pass.heavy,
        n,
        step,
        (reads, writes),
        (packed_reads, packed_writes),
        idle,
        kinds,
        out,
    )
}

impl DynRule for TextRule {
    fn info(&self) -> &'static RuleInfo {
        self.info
    }
    fn hyper(&self, name: &str) -> Option<HyperValue> {
        let i = self.info.hypers.iter().position(|h| h.name == name)?;
        Some(self.hypers[i])
    }
    fn set_hyper(&mut self, name: &str, value: HyperValue) -> Result<()> {
        let Some(i) = self.info.hypers.iter().position(|h| h.name == name) else {
            return Err(crate::rule::unknown_hyper(self.info, name));
        };
        match (self.info.hypers[i].default, value) {
            (HyperValue::Num(_), HyperValue::Num(x)) => {
                crate::rule::check_range(self.info, name, x)?;
                self.hypers[i] = value;
                Ok(())
            }
            (HyperValue::Bool(_), HyperValue::Bool(_)) => {
                self.hypers[i] = value;
                Ok(())
            }
            (d, v) => Err(crate::rule::hyper_type(
                self.info,
                name,
                matches!(d, HyperValue::Bool(_)),
                v,
            )),
        }
    }
    fn init_f32(&self, len: usize) -> State<f32> {
        self.init(len)
    }
    fn init_f64(&self, len: usize) -> State<f64> {
        self.init(len)
    }
    fn step_f32(
        &self,
        state: &mut State<f32>,
        w: &mut [f32],
        g: &[f32],
        inputs: &[&[f32]],
    ) -> Result<()> {
        self.step(state, w, g, inputs)
    }
    fn step_f64(
        &self,
        state: &mut State<f64>,
        w: &mut [f64],
        g: &[f64],
        inputs: &[&[f64]],
    ) -> Result<()> {
        self.step(state, w, g, inputs)
    }
    fn clone_box(&self) -> Box<dyn DynRule> {
        Box::new(self.clone())
    }
}
