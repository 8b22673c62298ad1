//! The 2-D error surfaces as maths: an ill-conditioned bowl, Rosenbrock's
//! valley, Beale's function and a saddle, each with its gradient and a
//! positive diagonal curvature (for vSGD's `h` input); and [`Surface`], one
//! of them with the window a picture shows, the start, the marked point and
//! the optimizers run on it. Nothing here draws or runs an optimizer.

use super::spec::PathSpec;

/// A test function of two variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// f = (x² + κ y²) / 2 with κ = [`BOWL_KAPPA`].
    Bowl,
    /// f = (1 − x)² + 100 (y − x²)².
    Rosenbrock,
    /// f = Σᵢ (cᵢ − x + x yⁱ)², c = (1.5, 2.25, 2.625).
    Beale,
    /// f = x² − y².
    Saddle,
}

/// Condition number of the bowl.
pub const BOWL_KAPPA: f64 = 50.0;

const BEALE_C: [f64; 3] = [1.5, 2.25, 2.625];

impl Function {
    /// f(x, y).
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            Function::Bowl => 0.5 * (x * x + BOWL_KAPPA * y * y),
            Function::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Function::Beale => (1..=3)
                .map(|i| (BEALE_C[i - 1] - x + x * y.powi(i as i32)).powi(2))
                .sum(),
            Function::Saddle => x * x - y * y,
        }
    }

    /// ∇f(x, y).
    pub fn grad(self, x: f64, y: f64) -> [f64; 2] {
        match self {
            Function::Bowl => [x, BOWL_KAPPA * y],
            Function::Rosenbrock => [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ],
            Function::Beale => {
                let mut g = [0.0; 2];
                for i in 1..=3 {
                    let r = BEALE_C[i - 1] - x + x * y.powi(i as i32);
                    g[0] += 2.0 * r * (y.powi(i as i32) - 1.0);
                    g[1] += 2.0 * r * i as f64 * x * y.powi(i as i32 - 1);
                }
                g
            }
            Function::Saddle => [2.0 * x, -2.0 * y],
        }
    }

    /// A positive diagonal curvature estimate: the Hessian's diagonal for
    /// the bowl, the Gauss-Newton diagonal 2 Σ (∂rᵢ)² of the residuals for
    /// Rosenbrock (r₁ = 1 − x, r₂ = 10(y − x²)) and Beale, and the Hessian
    /// diagonal's magnitude for the saddle.
    pub fn curvature(self, x: f64, y: f64) -> [f64; 2] {
        match self {
            Function::Bowl => [1.0, BOWL_KAPPA],
            Function::Rosenbrock => [2.0 + 800.0 * x * x, 200.0],
            Function::Beale => {
                let mut h = [0.0; 2];
                for i in 1..=3 {
                    h[0] += 2.0 * (y.powi(i) - 1.0).powi(2);
                    h[1] += 2.0 * (f64::from(i) * x * y.powi(i - 1)).powi(2);
                }
                h
            }
            Function::Saddle => [2.0, 2.0],
        }
    }
}

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

/// A 2-D error surface, the part of it shown, and the optimizers run on it.
#[derive(Clone, Debug)]
pub struct Surface {
    /// Short name, used in file names (`paths-<key>.png`).
    pub key: &'static str,
    /// The picture's title.
    pub title: &'static str,
    /// One line on what the picture shows.
    pub caption: &'static str,
    /// The function.
    pub function: Function,
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
    /// Steps run unless the caller asks for another number.
    pub steps: usize,
    /// The optimizers run, with their hyperparameters.
    pub paths: Vec<PathSpec>,
}

impl Surface {
    /// f(x, y).
    pub fn f(&self, x: f64, y: f64) -> f64 {
        self.function.value(x, y)
    }

    /// ∇f(x, y).
    pub fn grad(&self, x: f64, y: f64) -> [f64; 2] {
        self.function.grad(x, y)
    }

    /// The positive diagonal curvature at (x, y).
    pub fn curvature(&self, x: f64, y: f64) -> [f64; 2] {
        self.function.curvature(x, y)
    }

    /// Whether `p` lies in the window drawn.
    pub fn contains(&self, p: [f64; 2]) -> bool {
        self.x.0 <= p[0] && p[0] <= self.x.1 && self.y.0 <= p[1] && p[1] <= self.y.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Function; 4] = [
        Function::Bowl,
        Function::Rosenbrock,
        Function::Beale,
        Function::Saddle,
    ];

    /// Every gradient agrees with central differences of f.
    #[test]
    fn gradients_match_finite_differences() {
        for func in ALL {
            for &(x, y) in &[(0.3, -0.7), (-1.2, 1.1), (2.0, 0.4), (-1.5, 2.5)] {
                let g = func.grad(x, y);
                let e = 1e-6;
                let fx = (func.value(x + e, y) - func.value(x - e, y)) / (2.0 * e);
                let fy = (func.value(x, y + e) - func.value(x, y - e)) / (2.0 * e);
                for (a, b) in [(g[0], fx), (g[1], fy)] {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{func:?}: {a} vs {b} at ({x}, {y})"
                    );
                }
            }
        }
    }

    /// The known minima (and the saddle point) are stationary, and the
    /// curvature estimate is positive.
    #[test]
    fn stationary_points_and_positive_curvature() {
        for (func, [x, y]) in [
            (Function::Bowl, [0.0, 0.0]),
            (Function::Rosenbrock, [1.0, 1.0]),
            (Function::Beale, [3.0, 0.5]),
            (Function::Saddle, [0.0, 0.0]),
        ] {
            let g = func.grad(x, y);
            assert!(g[0].abs() < 1e-12 && g[1].abs() < 1e-12, "{func:?}: {g:?}");
            let h = func.curvature(0.5, -0.5);
            assert!(h[0] > 0.0 && h[1] > 0.0, "{func:?}");
        }
    }
}
