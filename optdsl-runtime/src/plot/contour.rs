//! Iso-lines of a sampled function by marching squares, and the level sets to
//! draw (geometric for valleys like Rosenbrock's, quadratic for bowls, linear
//! for saddles).

/// Values of `f` on an `nx` × `ny` grid spanning `x` × `y` (row-major, row `j`
/// at y = y0 + j·dy).
#[derive(Clone, Debug)]
pub struct Grid {
    /// The x range.
    pub x: (f64, f64),
    /// The y range.
    pub y: (f64, f64),
    /// Points along x.
    pub nx: usize,
    /// Points along y.
    pub ny: usize,
    /// `values[j * nx + i]` = f(x_i, y_j).
    pub values: Vec<f64>,
}

impl Grid {
    /// Samples `f` on `nx` × `ny` points (both at least 2).
    pub fn sample(
        f: impl Fn(f64, f64) -> f64,
        x: (f64, f64),
        y: (f64, f64),
        nx: usize,
        ny: usize,
    ) -> Self {
        let (nx, ny) = (nx.max(2), ny.max(2));
        let mut values = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            let yj = y.0 + (y.1 - y.0) * j as f64 / (ny - 1) as f64;
            for i in 0..nx {
                let xi = x.0 + (x.1 - x.0) * i as f64 / (nx - 1) as f64;
                values.push(f(xi, yj));
            }
        }
        Grid {
            x,
            y,
            nx,
            ny,
            values,
        }
    }

    fn xy(&self, i: f64, j: f64) -> (f64, f64) {
        (
            self.x.0 + (self.x.1 - self.x.0) * i / (self.nx - 1) as f64,
            self.y.0 + (self.y.1 - self.y.0) * j / (self.ny - 1) as f64,
        )
    }

    /// The smallest and largest finite value.
    pub fn range(&self) -> (f64, f64) {
        self.values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// The segments of the iso-line f = `level`, in (x, y) coordinates.
    ///
    /// Each grid cell's corners are classified above/below the level (16
    /// cases); the crossing on an edge is placed by linear interpolation. The
    /// two saddle cases are resolved by the cell's mean value.
    pub fn iso_segments(&self, level: f64) -> Vec<[(f64, f64); 2]> {
        let mut out = Vec::new();
        let v = |i: usize, j: usize| self.values[j * self.nx + i];
        for j in 0..self.ny - 1 {
            for i in 0..self.nx - 1 {
                // Corners counter-clockwise from bottom-left.
                let c = [v(i, j), v(i + 1, j), v(i + 1, j + 1), v(i, j + 1)];
                if c.iter().any(|x| !x.is_finite()) {
                    continue;
                }
                let mut case = 0;
                for (k, &x) in c.iter().enumerate() {
                    if x > level {
                        case |= 1 << k;
                    }
                }
                if case == 0 || case == 15 {
                    continue;
                }
                let (fi, fj) = (i as f64, j as f64);
                // Crossing point on edge e (0: bottom, 1: right, 2: top, 3: left).
                let edge = |e: usize| -> (f64, f64) {
                    let (a, b, p, q) = match e {
                        0 => (c[0], c[1], (fi, fj), (fi + 1.0, fj)),
                        1 => (c[1], c[2], (fi + 1.0, fj), (fi + 1.0, fj + 1.0)),
                        2 => (c[3], c[2], (fi, fj + 1.0), (fi + 1.0, fj + 1.0)),
                        _ => (c[0], c[3], (fi, fj), (fi, fj + 1.0)),
                    };
                    let t = if b != a {
                        ((level - a) / (b - a)).clamp(0.0, 1.0)
                    } else {
                        0.5
                    };
                    self.xy(p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1))
                };
                let mid_above = (c[0] + c[1] + c[2] + c[3]) / 4.0 > level;
                let pairs: &[(usize, usize)] = match case {
                    1 | 14 => &[(3, 0)],
                    2 | 13 => &[(0, 1)],
                    3 | 12 => &[(3, 1)],
                    4 | 11 => &[(1, 2)],
                    6 | 9 => &[(0, 2)],
                    7 | 8 => &[(3, 2)],
                    // Corners 0 and 2 above (case 5) or below (case 10).
                    5 | 10 => {
                        if mid_above == (case == 5) {
                            &[(3, 2), (0, 1)]
                        } else {
                            &[(3, 0), (1, 2)]
                        }
                    }
                    _ => &[],
                };
                for &(a, b) in pairs {
                    out.push([edge(a), edge(b)]);
                }
            }
        }
        out
    }
}

/// `n` levels from `lo` to `hi` spaced geometrically (both positive).
pub fn geometric_levels(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|k| (a + (b - a) * k as f64 / (n.max(2) - 1) as f64).exp())
        .collect()
}

/// `n` levels `hi·(k/n)²`, k = 1..=n: on a quadratic bowl the iso-lines are
/// then equally spaced ellipses.
pub fn quadratic_levels(hi: f64, n: usize) -> Vec<f64> {
    (1..=n)
        .map(|k| hi * (k as f64 / n as f64).powi(2))
        .collect()
}

/// `n` levels evenly spaced strictly inside (`lo`, `hi`).
pub fn linear_levels(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (1..=n)
        .map(|k| lo + (hi - lo) * k as f64 / (n + 1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circle_iso_line_lies_on_the_circle() {
        let g = Grid::sample(|x, y| x * x + y * y, (-2.0, 2.0), (-2.0, 2.0), 81, 81);
        let segs = g.iso_segments(1.0);
        assert!(segs.len() > 50, "{} segments", segs.len());
        for s in &segs {
            for &(x, y) in s {
                let r = (x * x + y * y).sqrt();
                assert!((r - 1.0).abs() < 0.01, "point ({x}, {y}) at radius {r}");
            }
        }
        // The segments close up: total length is the circumference.
        let len: f64 = segs
            .iter()
            .map(|[a, b]| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt())
            .sum();
        assert!(
            (len - 2.0 * std::f64::consts::PI).abs() < 0.02,
            "length {len}"
        );
    }

    #[test]
    fn levels_are_increasing_and_in_range() {
        let g = geometric_levels(0.1, 1000.0, 9);
        assert!((g[0] - 0.1).abs() < 1e-12 && (g[8] - 1000.0).abs() < 1e-9);
        assert!((g[2] - 1.0).abs() < 1e-12);
        let q = quadratic_levels(4.0, 4);
        assert_eq!(q, vec![0.25, 1.0, 2.25, 4.0]);
        let l = linear_levels(-1.0, 1.0, 3);
        assert_eq!(l, vec![-0.5, 0.0, 0.5]);
    }
}
