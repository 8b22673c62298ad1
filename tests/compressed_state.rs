//! Compressed optimizer state (8-bit block-wise and bfloat16): bitsandbytes'
//! trajectories and final bytes replayed; every built-in with `q8` and
//! `bf16` state the same bits compiled and from text, on one and two
//! threads; a step from a zero state stores exactly the quantized f32
//! result; checkpoints with 8-bit state resume byte-identical; shards split
//! only at blocks.

mod common;

use common::data;
use optdsl::quant::{quantizer, Packed};
use optdsl::replay::{replay_file, Outcome};
use optdsl::{
    builtin_rule, builtins, DynFloat, DynRule, Float, Optimizer, Rules, State, StateFormat, Storage,
};
use std::path::Path;

/// The values' bits, every NaN as one (compiled and interpreted code may
/// carry different NaN payloads; a rule such as vSGD's can reach NaN when
/// its state is quantized coarsely).
fn bits<F: Float>(v: &[F]) -> Vec<u64> {
    v.iter()
        .map(|x| {
            let x = x.to_f64();
            if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}

#[test]
fn bitsandbytes_trajectories_and_final_bytes_replay_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/8bit");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let (fixture, outcome) = replay_file(&path).unwrap();
            assert!(
                matches!(outcome, Outcome::Pass { .. }),
                "{}",
                outcome.line(&fixture.name)
            );
            assert!(!fixture.final_state.is_empty(), "{}", fixture.name);
            names.push(fixture.name);
        }
    }
    names.sort();
    assert_eq!(names, ["bnb-adam8bit", "bnb-adamw8bit", "bnb-lion8bit"]);
}

#[test]
fn a_changed_final_byte_fails_the_replay() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/8bit/bnb-lion8bit.json");
    let mut fixture = optdsl::replay::Fixture::load(&path).unwrap();
    let codes = fixture.final_state.get_mut("state1").unwrap();
    codes[300] = (codes[300] as u8 ^ 1) as f64;
    let outcome = optdsl::replay::replay(&fixture).unwrap();
    assert!(
        matches!(&outcome, Outcome::StateFail { what } if what.contains("state1[300]")),
        "{outcome:?}"
    );
}

/// Steps `rule` 6 times with its state in `format`, from text and compiled;
/// the two must agree bit for bit (parameters and compressed bytes), on one
/// thread and on the pool.
fn compiled_and_text_agree<F: DynFloat>(name: &str, format: StateFormat, n: usize) {
    let compiled = builtin_rule(name).unwrap();
    let source = &compiled.info().program().source;
    let text = Rules::parse(source).unwrap().remove(0);
    let text: &dyn DynRule = &text;
    let info = compiled.info();
    let inputs: Vec<Vec<F>> = info
        .inputs
        .iter()
        .enumerate()
        .map(|(k, _)| {
            data::<F>(n, 50 + k as u64)
                .iter()
                .map(|x| x.abs())
                .collect()
        })
        .collect();
    let refs: Vec<&[F]> = inputs.iter().map(|v| v.as_slice()).collect();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for (rule, single) in [
        (compiled.as_ref(), false),
        (text, false),
        (compiled.as_ref(), true),
    ] {
        let mut w: Vec<F> = data(n, 1);
        let mut s: State<F> = F::dyn_init(rule, n);
        s.set_format(info, format, None);
        let mut go = || {
            for step in 0..6u64 {
                let g: Vec<F> = data(n, step + 2);
                F::dyn_step(rule, &mut s, &mut w, &g, &refs).unwrap();
            }
        };
        if single {
            one.install(go);
        } else {
            go();
        }
        runs.push((bits(&w), s.packed.clone(), s.scalars.clone()));
    }
    for (k, r) in runs.iter().enumerate().skip(1) {
        if let Some(i) = (0..n).find(|&i| r.0[i] != runs[0].0[i]) {
            panic!(
                "{name} {format} n={n}: w of run {k} differs at {i}: {} vs {}",
                f64::from_bits(r.0[i]),
                f64::from_bits(runs[0].0[i])
            );
        }
        // Debug text compares the maxima as bits would (a NaN maximum, from
        // a block of NaN, is not == itself).
        assert!(
            format!("{:?}", r.1) == format!("{:?}", runs[0].1),
            "{name} {format} n={n}: state of run {k} differs"
        );
        assert!(
            r.2 == runs[0].2,
            "{name} {format} n={n}: scalars of run {k} differ"
        );
    }
}

#[test]
fn every_builtin_with_compressed_state_agrees_compiled_text_and_threads() {
    // Longer than a driver block (16,384) and the parallel threshold, not a
    // multiple of 256; and a short tensor with a partial block.
    // Rules with shapes keep their state in the element type.
    let elementwise = builtins()
        .iter()
        .filter(|b| (b.make)().info().program().tensor.is_none());
    for b in elementwise {
        for format in [StateFormat::Q8, StateFormat::Bf16] {
            compiled_and_text_agree::<f32>(b.name, format, 300_001);
            compiled_and_text_agree::<f64>(b.name, format, 1_000);
        }
    }
}

#[test]
fn a_step_stores_the_quantized_f32_result() {
    // From a zero state, one step with 8-bit state computes what the f32 step
    // computes, then stores it quantized: the bytes must be those of
    // quantizing the f32 state.
    for name in ["adam", "lion", "rmsprop", "adagrad", "momentum"] {
        let rule = builtin_rule(name).unwrap();
        let info = rule.info();
        let n = 5_000;
        let g: Vec<f32> = data(n, 9);
        let (mut w1, mut w2): (Vec<f32>, Vec<f32>) = (data(n, 1), data(n, 1));
        let mut full: State<f32> = f32::dyn_init(rule.as_ref(), n);
        let mut q8: State<f32> = f32::dyn_init(rule.as_ref(), n);
        q8.set_format(info, StateFormat::Q8, None);
        f32::dyn_step(rule.as_ref(), &mut full, &mut w1, &g, &[]).unwrap();
        f32::dyn_step(rule.as_ref(), &mut q8, &mut w2, &g, &[]).unwrap();
        assert_eq!(
            bits(&w1),
            bits(&w2),
            "{name}: the first step reads zeros either way"
        );
        let plan = q8.storage();
        for (i, st) in plan.iter().enumerate() {
            let want = Packed::from_values(*st, &full.buffers[i], None);
            assert_eq!(q8.packed[i], want, "{name}: buffer {}", info.buffers[i]);
        }
    }
}

#[test]
fn optimizers_compress_large_tensors_only_and_count_their_bytes() {
    let mut opt = Optimizer::<f32>::new().with_state_format(StateFormat::Q8);
    opt.add_group(builtin_rule("adam8bit").unwrap(), &[10_000, 4_095]);
    opt.add_group(builtin_rule("lion").unwrap(), &[8_192]);
    let g = opt.groups();
    assert_eq!(
        g[0].states()[0].storage(),
        [Storage::Q8 { signed: true }, Storage::Q8 { signed: false }]
    );
    // adam8bit declares its state 8-bit: it stays so under 4,096 too.
    assert_eq!(g[0].states()[1].storage(), g[0].states()[0].storage());
    assert_eq!(g[1].states()[0].storage(), [Storage::Q8 { signed: true }]);
    let bytes = g[0].states()[0].bytes_per_element();
    assert!((bytes - 2.0 * (1.0 + 4.0 / 256.0)).abs() < 1e-12, "{bytes}");
    // bf16: 2 bytes a buffer.
    let mut opt = Optimizer::<f32>::new().with_state_format(StateFormat::Bf16);
    opt.add_group(builtin_rule("adamax").unwrap(), &[5_000]);
    assert_eq!(opt.groups()[0].states()[0].bytes_per_element(), 4.0);
    // Back to full precision: the values survive (rounded once).
    let mut params = vec![0.5f32; 5_000];
    opt.step_flat(&mut params, &data::<f32>(5_000, 3)).unwrap();
    let before = opt.groups()[0].states()[0]
        .buffer_values(opt.groups()[0].rule().info(), "exp_avg")
        .unwrap();
    opt.set_compression(optdsl::Compression::default());
    let s = &opt.groups()[0].states()[0];
    assert!(s.packed.is_empty());
    assert_eq!(
        s.buffer(opt.groups()[0].rule().info(), "exp_avg").unwrap(),
        &before[..]
    );
}

#[test]
fn sharded_8bit_state_splits_only_at_blocks_and_joins_back() {
    let mut opt = Optimizer::<f32>::new().with_state_format(StateFormat::Q8);
    opt.add_group(builtin_rule("adam").unwrap(), &[10_000]);
    let mut params = data::<f32>(10_000, 1);
    opt.step_flat(&mut params, &data::<f32>(10_000, 2)).unwrap();
    let state = opt.state();
    let e = state.slice(0..1000).unwrap_err().to_string();
    assert!(e.contains("multiples of 256"), "{e}");
    let parts = vec![
        state.slice(0..1024).unwrap(),
        state.slice(1024..10_000).unwrap(),
    ];
    let joined = optdsl::OptimizerState::join(parts, &state.lens()).unwrap();
    assert_eq!(joined, state);
}

#[test]
fn bf16_stochastic_rounding_is_the_same_on_any_number_of_threads() {
    let rule = builtin_rule("momentum").unwrap();
    let info = rule.info();
    let n = 200_000;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let run = |single: bool, seed: Option<u64>| {
        let mut w: Vec<f32> = data(n, 1);
        let mut s: State<f32> = f32::dyn_init(rule.as_ref(), n);
        s.set_format(info, StateFormat::Bf16, seed);
        let mut go = || {
            for step in 0..4 {
                f32::dyn_step(
                    rule.as_ref(),
                    &mut s,
                    &mut w,
                    &data::<f32>(n, step + 2),
                    &[],
                )
                .unwrap();
            }
        };
        if single {
            one.install(go)
        } else {
            go()
        }
        (bits(&w), s.packed)
    };
    let a = run(false, Some(7));
    assert_eq!(a, run(true, Some(7)));
    assert_ne!(
        a.1,
        run(false, None).1,
        "stochastic rounding differs from nearest"
    );
    assert_ne!(a.1, run(false, Some(8)).1, "the seed matters");
}

#[test]
fn the_quantizer_uses_bitsandbytes_maps() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/8bit/bnb-adam8bit.json");
    let fixture = optdsl::replay::Fixture::load(&path).unwrap();
    for (map, signed) in [
        (&fixture.qmap_signed, true),
        (&fixture.qmap_unsigned, false),
    ] {
        let want: Vec<f32> = map.as_ref().unwrap().iter().map(|&x| x as f32).collect();
        assert_eq!(quantizer(signed).map.to_vec(), want);
    }
}

#[test]
fn a_checkpoint_with_8bit_state_resumes_byte_identical() {
    let d = common::scratch("compressed", "resume");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            "semeion",
            "--optimizer",
            "adam",
            "--hidden",
            "24",
            "--set",
            "lr=0.01",
            "--batch",
            "64",
            "--out",
            "out",
            "--state",
            "q8",
        ];
        args.extend_from_slice(extra);
        let out = common::optdsl(&d, &args);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        common::text(&out.stdout)
    };
    let a = train(&["--epochs", "3", "--save", "a"]);
    train(&["--epochs", "2", "--save", "b"]);
    let c = train(&["--epochs", "3", "--resume", "b", "--save", "c"]);
    assert!(c.contains("resumed b at epoch 2"), "{c}");
    let (fa, fc) = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("c")).unwrap(),
    );
    assert_eq!(fa, fc);
    // The checkpoint keeps the codes, not f32 moments.
    assert!(String::from_utf8_lossy(&fa).contains("\"Q8\""));
    let f32_run = common::optdsl(
        &d,
        &[
            "train",
            "--data",
            "semeion",
            "--optimizer",
            "adam",
            "--hidden",
            "24",
            "--set",
            "lr=0.01",
            "--batch",
            "64",
            "--out",
            "out2",
            "--epochs",
            "3",
        ],
    );
    assert!(f32_run.status.success());
    // The run says how it keeps the state; an f32 run says nothing of it.
    assert!(
        a.contains(
            "optimizer state: --state q8 (tensors under --state-min-size 4096 keep f32); \
             Adam on the weights: 1 of 2 tensors compressed, Adam on the biases: 0 of 2 \
             tensors compressed; "
        ) && a.contains(" bytes a parameter"),
        "{a}"
    );
    assert!(!common::text(&f32_run.stdout).contains("optimizer state:"));
    let last = |s: &str| s.lines().last().unwrap().to_string();
    assert!(last(&a).starts_with("test accuracy: 0."), "{a}");
    let history = |dir: &str| std::fs::read_to_string(d.join(dir).join("adam.csv")).unwrap();
    assert_ne!(history("out"), history("out2"), "q8 state changes the run");
}

/// Adam compiled, Adam from its text, and the index of its AMSGrad buffer.
fn adam_compiled_text_and_amsgrad_buffer() -> (Box<dyn DynRule>, optdsl::TextRule, usize) {
    let compiled = builtin_rule("adam").unwrap();
    let info = compiled.info();
    let text = Rules::parse(&info.program().source).unwrap().remove(0);
    let mx = info
        .buffers
        .iter()
        .position(|b| *b == "max_exp_avg_sq")
        .unwrap();
    (compiled, text, mx)
}

#[test]
fn a_buffer_the_step_leaves_alone_keeps_its_bytes() {
    // Adam without AMSGrad neither reads nor writes `max_exp_avg_sq`: the
    // fused step does not decode or encode it, and neither do the text rule
    // or the reference interpreter. Bytes that a decode and encode would
    // change (8-bit blocks whose maximum code is not the map's top, a
    // signalling NaN in bfloat16) must stay as they are.
    let (compiled, text, mx) = adam_compiled_text_and_amsgrad_buffer();
    let info = compiled.info();
    let n = 70_000;
    for format in [StateFormat::Q8, StateFormat::Bf16] {
        let mut runs = Vec::new();
        for run in 0..3 {
            let rule: &dyn DynRule = if run == 1 { &text } else { compiled.as_ref() };
            let mut s: State<f32> = f32::dyn_init(rule, n);
            s.set_format(info, format, None);
            match s.packed[mx].as_mut().unwrap() {
                Packed::Q8 { codes, absmax, .. } => {
                    codes
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, c)| *c = (i % 200) as u8);
                    absmax
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, a)| *a = 1.0 + i as f32);
                }
                Packed::Bf16 { bits, .. } => {
                    bits.iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = 0x7f81 + (i % 3) as u16);
                }
                Packed::Deferred { .. } => unreachable!("set_format stores every buffer"),
            }
            let before = s.packed[mx].clone();
            let mut w: Vec<f32> = data(n, 1);
            for step in 0..3u64 {
                let g: Vec<f32> = data(n, step + 2);
                if run == 2 {
                    optdsl::naive::naive_step_dyn(rule, &mut s, &mut w, &g, &[]).unwrap();
                } else {
                    f32::dyn_step(rule, &mut s, &mut w, &g, &[]).unwrap();
                }
            }
            assert!(
                s.packed[mx] == before,
                "{format} run {run}: the switched-off buffer changed"
            );
            runs.push((bits(&w), format!("{:?}", s.packed)));
        }
        assert!(runs[1] == runs[0], "{format}: text and compiled differ");
        assert!(
            runs[2] == runs[0],
            "{format}: reference and compiled differ"
        );
    }
}

#[test]
fn a_buffer_switched_off_by_a_hyperparameter_is_stored_only_once_needed() {
    // Adam's AMSGrad buffer, with `amsgrad` false, is left out (as PyTorch
    // allocates it only with amsgrad=True): the state keeps 2 bytes of 8-bit
    // moments and their maxima a parameter, 4 of bfloat16. Turned on later,
    // it is stored again with the same bytes: every step gives the bits of a
    // state that kept it all along, compiled and from text.
    let (compiled, text, mx) = adam_compiled_text_and_amsgrad_buffer();
    let info = compiled.info();
    let amsgrad = info
        .hypers
        .iter()
        .position(|h| h.name == "amsgrad")
        .unwrap();
    let mut bools = vec![None; info.hypers.len()];
    bools[amsgrad] = Some(false);
    let n = 70_001;
    // bfloat16 rounded stochastically too: the buffer left out keeps its
    // rounding for when it is stored.
    for (format, bytes, stochastic) in [
        (StateFormat::Q8, 2.0 * (1.0 + 4.0 / 256.0), None),
        (StateFormat::Bf16, 4.0, None),
        (StateFormat::Bf16, 4.0, Some(7)),
    ] {
        for from_text in [false, true] {
            let mut rule: Box<dyn DynRule> = if from_text {
                Box::new(text.clone())
            } else {
                builtin_rule("adam").unwrap()
            };
            let (mut kept, mut left): (State<f32>, State<f32>) = (
                f32::dyn_init(rule.as_ref(), n),
                f32::dyn_init(rule.as_ref(), n),
            );
            kept.set_format(info, format, stochastic);
            left.set_format(info, format, stochastic);
            left.leave_out_idle(info, &bools);
            assert!(left.packed[mx].as_ref().unwrap().is_deferred());
            assert_eq!(left.bytes_per_element(), bytes, "{format}");
            assert_eq!(left.storage(), kept.storage());
            let (mut w1, mut w2): (Vec<f32>, Vec<f32>) = (data(n, 1), data(n, 1));
            for step in 0..6u64 {
                if step == 3 {
                    rule.set_hyper("amsgrad", optdsl::HyperValue::Bool(true))
                        .unwrap();
                }
                let g: Vec<f32> = data(n, step + 2);
                f32::dyn_step(rule.as_ref(), &mut kept, &mut w1, &g, &[]).unwrap();
                f32::dyn_step(rule.as_ref(), &mut left, &mut w2, &g, &[]).unwrap();
                assert_eq!(
                    bits(&w1),
                    bits(&w2),
                    "{format} {stochastic:?} text={from_text} step {step}"
                );
                assert_eq!(
                    left.packed[mx].as_ref().unwrap().is_deferred(),
                    step < 3,
                    "{format} {stochastic:?} text={from_text} step {step}"
                );
                let values = |s: &State<f32>| bits(&s.packed[mx].as_ref().unwrap().to_vec::<f32>());
                assert_eq!(values(&left), values(&kept));
            }
            assert!(
                format!("{:?}", left.packed) == format!("{:?}", kept.packed),
                "{format} text={from_text}: the stored bytes differ"
            );
        }
    }
    // Through the optimizer, the format chosen at run time.
    for (format, bytes) in [
        (StateFormat::Q8, 2.0 * (1.0 + 4.0 / 256.0)),
        (StateFormat::Bf16, 4.0),
    ] {
        let mut opt = Optimizer::<f32>::new().with_state_format(format);
        opt.add_group(builtin_rule("adam").unwrap(), &[10_000]);
        assert_eq!(opt.groups()[0].states()[0].bytes_per_element(), bytes);
    }
}
