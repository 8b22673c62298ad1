//! The pictures: `plot_paths` and `plot_curves` write valid PNGs of the
//! stated size that show the paths, and the traced paths behave as the
//! pictures' captions say (momentum beats GD on the bowl at the same learning
//! rate, NAG overshoots less than momentum, adaptive rules leave the saddle
//! first). Bad output directories are typed errors naming the path.

use optdsl::plot::{
    curves::CURVES_SIZE, paths::PATHS_SIZE, plot_curves, plot_curves_as, plot_paths, surfaces,
    trace, EpochPoint, Format, PathSpec, Surface, PALETTE,
};
use optdsl::Error;
use std::path::{Path, PathBuf};

/// A fresh, empty scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plots")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// How many pixels of the image have exactly this color.
fn count_color(path: &Path, c: plotters::style::RGBColor) -> usize {
    let img = image::open(path).unwrap().to_rgb8();
    img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
}

fn surface(key: &str) -> Surface {
    surfaces().into_iter().find(|s| s.key == key).unwrap()
}

fn dist(p: [f64; 2], q: [f64; 2]) -> f64 {
    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
}

#[test]
fn paths_writes_one_png_per_surface_with_the_paths_drawn() {
    let dir = scratch("paths").join("nested");
    let written = plot_paths(&dir, None, &[Format::Png]).unwrap();
    // The same pictures with no steps taken: legend and start marker only.
    let bare = plot_paths(&scratch("paths-bare"), Some(0), &[Format::Png]).unwrap();
    let keys: Vec<_> = surfaces().iter().map(|s| s.key).collect();
    assert!(written.len() >= 3 && written.len() == keys.len());
    for ((path, key), bare) in written.iter().zip(&keys).zip(&bare) {
        assert_eq!(path, &dir.join(format!("paths-{key}.png")));
        assert_eq!(png_size(path), PATHS_SIZE);
        // Every path's color covers more of the picture than in the legend alone.
        let n = surface(key).paths.len();
        for (i, c) in PALETTE.iter().take(n).enumerate() {
            let (px, legend) = (count_color(path, *c), count_color(bare, *c));
            assert!(legend > 50, "{key}: path {i} missing from the legend");
            assert!(
                px > legend + 150,
                "{key}: path {i} has {px} pixels, its legend {legend}"
            );
        }
    }
    // Only the announced files are in the directory.
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn paths_svg_is_written_beside_the_png() {
    let dir = scratch("svg");
    let written = plot_paths(&dir, Some(20), &[Format::Png, Format::Svg]).unwrap();
    assert_eq!(written.len(), 2 * surfaces().len());
    for p in written.iter().filter(|p| p.extension().unwrap() == "svg") {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{}",
            p.display()
        );
        assert!(text.contains("Optimizers, 20 steps"), "{}", p.display());
    }
}

#[test]
fn an_output_directory_that_cannot_be_created_is_a_typed_error_naming_it() {
    let base = scratch("blocked");
    std::fs::create_dir_all(&base).unwrap();
    let file = base.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for dir in [file.clone(), file.join("below")] {
        match plot_paths(&dir, Some(5), &[Format::Png]) {
            Err(Error::Io { path, message }) => {
                assert_eq!(path, dir.display().to_string());
                assert!(!message.is_empty());
            }
            other => panic!("expected Error::Io for {}, got {other:?}", dir.display()),
        }
    }
    // The file in the way is untouched.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[test]
fn momentum_ends_nearer_the_bowl_minimum_than_gd_at_the_same_lr() {
    let s = surface("bowl");
    for lr in [0.006, 0.012, 0.03] {
        let gd = trace(&s, &PathSpec::new("GD", "sgd", &[("lr", lr)]), 60).unwrap();
        let mom = trace(
            &s,
            &PathSpec::new("M", "momentum", &[("lr", lr), ("momentum", 0.9)]),
            60,
        )
        .unwrap();
        let (dg, dm) = (dist(gd.last(), s.mark.0), dist(mom.last(), s.mark.0));
        assert!(dm < dg / 2.0, "lr {lr}: momentum {dm} vs GD {dg}");
        // Momentum overshoots the minimum along x (the start has x < 0); GD never does.
        assert!(
            mom.points.iter().any(|p| p[0] > 0.5),
            "lr {lr}: momentum does not overshoot"
        );
        assert!(
            gd.points.iter().all(|p| p[0] < 0.0),
            "lr {lr}: GD overshoots"
        );
    }
}

#[test]
fn gd_zigzags_across_the_bowl_at_the_pictured_lr() {
    let s = surface("bowl");
    let gd = trace(&s, &s.paths[0], s.steps).unwrap();
    assert_eq!(gd.spec.rule, "sgd");
    let flips = gd
        .points
        .windows(2)
        .filter(|w| w[0][1] * w[1][1] < 0.0)
        .count();
    assert!(flips >= 5, "{flips} sign changes of y");
}

#[test]
fn nag_overshoots_less_than_momentum_and_ends_nearer() {
    let s = surface("bowl-nag");
    let run = |rule| {
        trace(
            &s,
            &PathSpec::new(rule, rule, &[("lr", 0.012), ("momentum", 0.9)]),
            s.steps,
        )
        .unwrap()
    };
    let (mom, nag) = (run("momentum"), run("nesterov"));
    let over = |t: &optdsl::plot::Trace| t.points.iter().map(|p| p[0]).fold(f64::MIN, f64::max);
    assert!(
        over(&nag) < over(&mom),
        "overshoot: NAG {} vs momentum {}",
        over(&nag),
        over(&mom)
    );
    assert!(over(&nag) > 0.0);
    let (dn, dm) = (dist(nag.last(), s.mark.0), dist(mom.last(), s.mark.0));
    assert!(dn < dm, "NAG {dn} vs momentum {dm}");
}

#[test]
fn adaptive_rules_leave_the_saddle_before_gd() {
    let s = surface("saddle");
    let escape = |spec: &PathSpec| {
        let t = trace(&s, spec, s.steps).unwrap();
        t.points.iter().position(|p| p[1].abs() > 1.0)
    };
    let by_label = |l: &str| s.paths.iter().find(|p| p.label == l).unwrap().clone();
    let gd = escape(&by_label("GD"));
    assert!(gd.is_none(), "GD left |y| < 1 at step {gd:?}");
    for l in ["Momentum", "NAG", "RMSprop", "Adam"] {
        assert!(escape(&by_label(l)).is_some(), "{l} never leaves |y| < 1");
    }
    assert!(escape(&by_label("Adam")).unwrap() < escape(&by_label("Momentum")).unwrap());
}

#[test]
fn every_pictured_path_descends_and_the_captioned_ones_reach_the_minimum() {
    for s in surfaces().iter().filter(|s| s.key != "saddle") {
        for spec in &s.paths {
            let t = trace(s, spec, s.steps).unwrap();
            assert!(t.stop.is_none(), "{} {}: {:?}", s.key, spec.label, t.stop);
            let (f0, f1) = (t.values[0], *t.values.last().unwrap());
            assert!(f1 < f0, "{} {}: f {f0} -> {f1}", s.key, spec.label);
        }
    }
    let near = |key: &str, label: &str, tol: f64| {
        let s = surface(key);
        let spec = s.paths.iter().find(|p| p.label.starts_with(label)).unwrap();
        let t = trace(&s, spec, s.steps).unwrap();
        dist(t.last(), s.mark.0) < tol
    };
    assert!(near("rosenbrock", "Adam", 0.1));
    assert!(near("rosenbrock", "AdaSecant", 0.2));
    assert!(!near("rosenbrock", "GD", 1.0));
    assert!(near("beale", "Momentum", 0.2));
    assert!(!near("beale", "GD", 2.0));
}

#[test]
fn a_rule_needing_an_unknown_input_or_a_bad_hyper_is_an_error() {
    let s = surface("bowl");
    let bad = trace(&s, &PathSpec::new("x", "sgd", &[("nope", 1.0)]), 5);
    assert!(matches!(bad, Err(Error::UnknownHyper { .. })), "{bad:?}");
    let unknown = trace(&s, &PathSpec::new("x", "no-such-rule", &[]), 5);
    assert!(
        matches!(unknown, Err(Error::UnknownOptimizer { .. })),
        "{unknown:?}"
    );
}

fn history(scale: f64, epochs: usize) -> Vec<EpochPoint> {
    (1..=epochs)
        .map(|e| EpochPoint {
            epoch: e,
            train_loss: scale / e as f64,
            test_loss: 1.2 * scale / e as f64,
            test_accuracy: 1.0 - 0.3 / e as f64,
        })
        .collect()
}

#[test]
fn curves_are_drawn_for_every_optimizer() {
    let dir = scratch("curves");
    let names = ["sgd", "momentum", "adam"];
    let histories: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), history(1.0 + i as f64, 2)))
        .collect();
    let written = plot_curves(&histories, &dir).unwrap();
    assert_eq!(written, vec![dir.join("curves.png")]);
    assert_eq!(png_size(&written[0]), CURVES_SIZE);
    for (i, n) in names.iter().enumerate() {
        // Three panels of two points each plus the legend.
        let px = count_color(&written[0], PALETTE[i]);
        assert!(px > 300, "{n}: {px} pixels");
    }
    // A color no line uses is absent.
    assert_eq!(count_color(&written[0], PALETTE[5]), 0);
}

#[test]
fn curves_tolerate_a_diverged_run_and_reject_no_data() {
    let dir = scratch("curves-diverged");
    let mut bad = history(1.0, 3);
    bad[2].train_loss = f64::NAN;
    bad[2].test_loss = f64::INFINITY;
    bad[2].test_accuracy = f64::NAN;
    let histories = vec![
        ("sgd".to_string(), history(2.0, 3)),
        ("lr-too-big".to_string(), bad),
    ];
    let written = plot_curves_as(&histories, &dir, &[Format::Png, Format::Svg]).unwrap();
    assert_eq!(written.len(), 2);
    let svg = std::fs::read_to_string(&written[1]).unwrap();
    assert!(svg.contains("lr-too-big (diverged)"));
    let empty: Vec<(String, Vec<EpochPoint>)> = vec![("sgd".into(), vec![])];
    assert!(matches!(
        plot_curves(&empty, &dir),
        Err(Error::Invalid { .. })
    ));
}
