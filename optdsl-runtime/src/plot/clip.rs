//! Clipping a line segment to a rectangle (Liang–Barsky), so that pictures
//! draw only the part of a path or curve inside their window.

/// Clips the segment a–b to the box; None when it lies outside.
pub fn clip(
    a: [f64; 2],
    b: [f64; 2],
    x: (f64, f64),
    y: (f64, f64),
) -> Option<([f64; 2], [f64; 2])> {
    // Liang–Barsky.
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a[0] - x.0),
        (dx, x.1 - a[0]),
        (-dy, a[1] - y.0),
        (dy, y.1 - a[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then(|| {
        (
            [a[0] + t0 * dx, a[1] + t0 * dy],
            [a[0] + t1 * dx, a[1] + t1 * dy],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_the_inside_part() {
        let (x, y) = ((0.0, 1.0), (0.0, 1.0));
        let (a, b) = clip([0.5, 0.5], [1.5, 0.5], x, y).unwrap();
        assert_eq!(a, [0.5, 0.5]);
        assert!((b[0] - 1.0).abs() < 1e-12 && (b[1] - 0.5).abs() < 1e-12);
        assert!(clip([2.0, 2.0], [3.0, 3.0], x, y).is_none());
        let (a, b) = clip([-1.0, 0.5], [2.0, 0.5], x, y).unwrap();
        assert!((a[0]).abs() < 1e-12 && (b[0] - 1.0).abs() < 1e-12);
    }
}
