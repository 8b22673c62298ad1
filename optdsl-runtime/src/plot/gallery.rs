//! The optimizer lists of the path pictures: which surfaces are drawn, the
//! window, start and step count of each, and the optimizers (with their
//! hyperparameters) run on it.

use super::spec::PathSpec;
use super::surface::{Function, Levels, Surface};

/// The five pictures' surfaces (the bowl twice) with the optimizers the pictures show on each.
pub fn surfaces() -> Vec<Surface> {
    let p = PathSpec::new;
    let bowl_surface = |key, title, caption, steps, paths| Surface {
        key,
        title,
        caption,
        function: Function::Bowl,
        x: (-10.5, 4.5),
        y: (-2.0, 2.0),
        start: [-10.0, 1.5],
        mark: ([0.0, 0.0], "minimum (0, 0)"),
        levels: Levels::Quadratic,
        steps,
        paths,
    };
    vec![
        bowl_surface(
            "bowl",
            "GD vs momentum on a bowl  f(x, y) = (x² + 50 y²) / 2",
            "Same learning rate 0.03: GD zig-zags across the steep y direction and crawls along x; momentum overshoots the minimum, swings back and ends far closer.",
            60,
            vec![
                p("GD", "sgd", &[("lr", 0.03)]),
                p("Momentum", "momentum", &[("lr", 0.03), ("momentum", 0.9)]),
            ],
        ),
        bowl_surface(
            "bowl-nag",
            "GD, momentum, NAG on a bowl  f(x, y) = (x² + 50 y²) / 2",
            "Learning rate 0.012: GD crawls; momentum overshoots and oscillates; NAG overshoots less and settles sooner; vSGD (no learning rate) uses the curvature.",
            80,
            vec![
                p("GD", "sgd", &[("lr", 0.012)]),
                p("Momentum", "momentum", &[("lr", 0.012), ("momentum", 0.9)]),
                p("NAG", "nesterov", &[("lr", 0.012), ("momentum", 0.9)]),
                p("vSGD, h = Hessian diagonal", "vsgd", &[]),
            ],
        ),
        Surface {
            key: "rosenbrock",
            title: "Rosenbrock  f(x, y) = (1 − x)² + 100 (y − x²)²",
            caption: "A curved valley with a flat floor: GD zig-zags between the steep walls near the start, then crawls along the floor; momentum gets further; Adam and AdaSecant reach the minimum.",
            function: Function::Rosenbrock,
            x: (-2.0, 2.0),
            y: (-1.0, 3.0),
            start: [-1.5, 2.5],
            mark: ([1.0, 1.0], "minimum (1, 1)"),
            levels: Levels::Log { lo: 0.05, hi: 2000.0 },
            steps: 1000,
            paths: vec![
                p("GD", "sgd", &[("lr", 1e-3)]),
                p("Momentum", "momentum", &[("lr", 2e-4), ("momentum", 0.9)]),
                p("RMSprop", "rmsprop", &[("lr", 0.01)]),
                p("Adam", "adam", &[("lr", 0.05)]),
                p("AdaSecant (no learning rate)", "adasecant", &[]),
            ],
        },
        Surface {
            key: "beale",
            title: "Beale  f(x, y) = Σᵢ (cᵢ − x + x yⁱ)²,  c = (1.5, 2.25, 2.625)",
            caption: "From (−2, 2), GD and the adaptive rules slide into the shallow valley along y ≈ 1.3 that leads away to the left (f ≈ 1); momentum's speed carries it across x = 0 into the basin of the minimum.",
            function: Function::Beale,
            x: (-3.5, 4.0),
            y: (-2.5, 2.5),
            start: [-2.0, 2.0],
            mark: ([3.0, 0.5], "minimum (3, 0.5)"),
            levels: Levels::Log { lo: 0.01, hi: 1e5 },
            steps: 500,
            paths: vec![
                p("GD", "sgd", &[("lr", 0.003)]),
                p("Momentum", "momentum", &[("lr", 0.001), ("momentum", 0.9)]),
                p("Adagrad", "adagrad", &[("lr", 1.0)]),
                p("Adam", "adam", &[("lr", 0.2)]),
            ],
        },
        Surface {
            key: "saddle",
            title: "Saddle  f(x, y) = x² − y²",
            caption: "Starting next to the ridge y = 0: GD escapes slowly (the gradient along y is tiny), momentum faster; Adam and RMSprop rescale the tiny gradient and leave at once.",
            function: Function::Saddle,
            x: (-2.0, 2.0),
            y: (-2.0, 2.0),
            start: [-1.8, 0.001],
            mark: ([0.0, 0.0], "saddle point (0, 0)"),
            levels: Levels::Linear,
            steps: 60,
            paths: vec![
                p("GD", "sgd", &[("lr", 0.05)]),
                p("Momentum", "momentum", &[("lr", 0.05), ("momentum", 0.9)]),
                p("NAG", "nesterov", &[("lr", 0.05), ("momentum", 0.9)]),
                p("RMSprop", "rmsprop", &[("lr", 0.01)]),
                p("Adam", "adam", &[("lr", 0.05)]),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marked points are stationary, inside the window, and every
    /// picture has a distinct key and at least two optimizers.
    #[test]
    fn marks_are_stationary_and_inside_the_window() {
        let all = surfaces();
        for s in &all {
            let [x, y] = s.mark.0;
            let g = s.grad(x, y);
            assert!(g[0].abs() < 1e-12 && g[1].abs() < 1e-12, "{}: {g:?}", s.key);
            assert!(s.contains(s.mark.0) && s.contains(s.start), "{}", s.key);
            assert!(s.paths.len() >= 2, "{}", s.key);
            assert_eq!(all.iter().filter(|o| o.key == s.key).count(), 1);
        }
    }
}
