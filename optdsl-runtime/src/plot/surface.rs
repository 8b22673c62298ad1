//! The 2-D error surfaces the path pictures are drawn on: an ill-conditioned
//! bowl, Rosenbrock's valley, Beale's function and a saddle, each with its
//! gradient, a positive diagonal curvature (for vSGD's `h` input), the window
//! drawn, the start, the minimum and the optimizers shown on it.

use super::paths::PathSpec;

/// How the contour levels of a surface are spaced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Levels {
    /// `hi·(k/n)²`: equally spaced ellipses on a quadratic bowl.
    Quadratic,
    /// Geometric (log-spaced) from `lo` to `hi`: valleys with a steep rim.
    Log {
        /// The lowest level.
        lo: f64,
        /// The highest level.
        hi: f64,
    },
    /// Evenly spaced between the window's smallest and largest value.
    Linear,
}

/// A 2-D error surface and the optimizers drawn on it.
#[derive(Clone, Debug)]
pub struct Surface {
    /// Short name, used in file names (`paths-<key>.png`).
    pub key: &'static str,
    /// The picture's title.
    pub title: &'static str,
    /// One line on what the picture shows.
    pub caption: &'static str,
    /// f(x, y).
    pub f: fn(f64, f64) -> f64,
    /// ∇f(x, y).
    pub grad: fn(f64, f64) -> [f64; 2],
    /// A positive diagonal curvature estimate (Gauss-Newton diagonal, or the
    /// Hessian's absolute diagonal), given to rules with an `input h`.
    pub curvature: fn(f64, f64) -> [f64; 2],
    /// The x window drawn.
    pub x: (f64, f64),
    /// The y window drawn.
    pub y: (f64, f64),
    /// Where every optimizer starts.
    pub start: [f64; 2],
    /// The marked point (the minimum, or the saddle point) and its legend text.
    pub mark: ([f64; 2], &'static str),
    /// Contour spacing.
    pub levels: Levels,
    /// Steps drawn unless the caller asks for another number.
    pub steps: usize,
    /// The optimizers drawn, with their hyperparameters.
    pub paths: Vec<PathSpec>,
}

/// Condition number of the bowl.
pub const BOWL_KAPPA: f64 = 50.0;

fn bowl(x: f64, y: f64) -> f64 {
    0.5 * (x * x + BOWL_KAPPA * y * y)
}
fn bowl_grad(x: f64, y: f64) -> [f64; 2] {
    [x, BOWL_KAPPA * y]
}
fn bowl_curv(_: f64, _: f64) -> [f64; 2] {
    [1.0, BOWL_KAPPA]
}

fn rosenbrock(x: f64, y: f64) -> f64 {
    (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
}
fn rosenbrock_grad(x: f64, y: f64) -> [f64; 2] {
    [
        -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
        200.0 * (y - x * x),
    ]
}
/// Gauss-Newton diagonal of f = r₁² + r₂², r₁ = 1 − x, r₂ = 10(y − x²).
fn rosenbrock_curv(x: f64, _: f64) -> [f64; 2] {
    [2.0 + 800.0 * x * x, 200.0]
}

const BEALE_C: [f64; 3] = [1.5, 2.25, 2.625];
fn beale(x: f64, y: f64) -> f64 {
    (1..=3)
        .map(|i| (BEALE_C[i - 1] - x + x * y.powi(i as i32)).powi(2))
        .sum()
}
fn beale_grad(x: f64, y: f64) -> [f64; 2] {
    let mut g = [0.0; 2];
    for i in 1..=3 {
        let r = BEALE_C[i - 1] - x + x * y.powi(i as i32);
        g[0] += 2.0 * r * (y.powi(i as i32) - 1.0);
        g[1] += 2.0 * r * i as f64 * x * y.powi(i as i32 - 1);
    }
    g
}
/// Gauss-Newton diagonal 2 Σ (∂rᵢ)² of the three residuals.
fn beale_curv(x: f64, y: f64) -> [f64; 2] {
    let mut h = [0.0; 2];
    for i in 1..=3 {
        h[0] += 2.0 * (y.powi(i) - 1.0).powi(2);
        h[1] += 2.0 * (f64::from(i) * x * y.powi(i - 1)).powi(2);
    }
    h
}

fn saddle(x: f64, y: f64) -> f64 {
    x * x - y * y
}
fn saddle_grad(x: f64, y: f64) -> [f64; 2] {
    [2.0 * x, -2.0 * y]
}
/// |Hessian diagonal|: the curvature's magnitude.
fn saddle_curv(_: f64, _: f64) -> [f64; 2] {
    [2.0, 2.0]
}

/// The five pictures' surfaces (the bowl twice) with the optimizers the pictures show on each.
pub fn surfaces() -> Vec<Surface> {
    let p = PathSpec::new;
    let bowl_surface = |key, title, caption, steps, paths| Surface {
        key,
        title,
        caption,
        f: bowl,
        grad: bowl_grad,
        curvature: bowl_curv,
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
            f: rosenbrock,
            grad: rosenbrock_grad,
            curvature: rosenbrock_curv,
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
            f: beale,
            grad: beale_grad,
            curvature: beale_curv,
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
            f: saddle,
            grad: saddle_grad,
            curvature: saddle_curv,
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

    /// Every gradient agrees with central differences of f.
    #[test]
    fn gradients_match_finite_differences() {
        for s in surfaces() {
            for &(x, y) in &[
                (0.3, -0.7),
                (-1.2, 1.1),
                (2.0, 0.4),
                (s.start[0], s.start[1]),
            ] {
                let g = (s.grad)(x, y);
                let e = 1e-6;
                let fx = ((s.f)(x + e, y) - (s.f)(x - e, y)) / (2.0 * e);
                let fy = ((s.f)(x, y + e) - (s.f)(x, y - e)) / (2.0 * e);
                for (a, b) in [(g[0], fx), (g[1], fy)] {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{}: {a} vs {b} at ({x}, {y})",
                        s.key
                    );
                }
            }
        }
    }

    /// The marked minima are stationary points, and the curvature is positive.
    #[test]
    fn marks_are_stationary_and_curvature_positive() {
        for s in surfaces() {
            let [x, y] = s.mark.0;
            let g = (s.grad)(x, y);
            assert!(g[0].abs() < 1e-12 && g[1].abs() < 1e-12, "{}: {g:?}", s.key);
            let h = (s.curvature)(0.5, -0.5);
            assert!(h[0] > 0.0 && h[1] > 0.0, "{}", s.key);
            assert!(
                s.x.0 < x && x < s.x.1 && s.y.0 < y && y < s.y.1,
                "{}",
                s.key
            );
        }
    }
}
