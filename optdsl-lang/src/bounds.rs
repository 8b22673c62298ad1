//! Interval bounds of a program's values, from the hyperparameters' declared
//! ranges and the operators' semantics: enough to prove a state buffer never
//! negative (Adam's `v = b2 * v + (1 - b2) * g * g` with `0 <= b2 < 1`), which
//! is what the unsigned 8-bit map needs. NaN is not negative, so a value that
//! may be NaN (`sqrt` of anything) still counts as never negative.

use crate::ast::{BinOp, UnOp};
use crate::functions::{Func, Reduction};
use crate::ir::{Id, Op, Program, Ty};

/// A closed interval `[lo, hi]` (infinite ends allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The least value.
    pub lo: f64,
    /// The greatest value.
    pub hi: f64,
}

impl Interval {
    /// Every number.
    pub const ANY: Interval = Interval {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };
    /// `[0, inf]`.
    pub const NON_NEGATIVE: Interval = Interval {
        lo: 0.0,
        hi: f64::INFINITY,
    };

    fn point(x: f64) -> Interval {
        if x.is_nan() {
            Interval::ANY
        } else {
            Interval { lo: x, hi: x }
        }
    }

    fn union(self, o: Interval) -> Interval {
        Interval {
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }

    /// Whether every value is `>= 0`.
    pub fn never_negative(self) -> bool {
        self.lo >= 0.0
    }

    fn positive(self) -> bool {
        self.lo > 0.0
    }
}

/// The product's bound of one pair of ends (`0 * inf` counts as 0: a finite
/// zero times an infinite end is the limit of finite products).
fn mul_end(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        a * b
    }
}

fn mul(a: Interval, b: Interval) -> Interval {
    let p = [
        mul_end(a.lo, b.lo),
        mul_end(a.lo, b.hi),
        mul_end(a.hi, b.lo),
        mul_end(a.hi, b.hi),
    ];
    Interval {
        lo: p.iter().copied().fold(f64::INFINITY, f64::min),
        hi: p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Whether `a * b` (or `a / b`) is a product whose factors are each never
/// negative or appear an even number of times (`(1 - b2) * g * g`).
fn even_product(p: &Program, known: &[Interval], a: Id, b: Id) -> bool {
    let mut factors: Vec<Id> = Vec::new();
    let mut stack = vec![a, b];
    while let Some(id) = stack.pop() {
        match p.values[id].op {
            Op::Binary(BinOp::Mul | BinOp::Div, x, y) if factors.len() + stack.len() < 64 => {
                stack.push(x);
                stack.push(y);
            }
            _ => factors.push(id),
        }
    }
    factors.sort_unstable();
    factors
        .chunk_by(|x, y| x == y)
        .all(|run| run.len() % 2 == 0 || known[run[0]].never_negative())
}

/// Bounds of every value of `p`, given that the buffers in `assumed` are
/// never negative (the others may be anything).
pub fn intervals(p: &Program, assumed: &[bool]) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::with_capacity(p.values.len());
    for v in &p.values {
        let at = |i: Id| out[i];
        let r = match &v.op {
            _ if v.ty == Ty::Bool => Interval::ANY,
            Op::Num(bits) => Interval::point(f64::from_bits(*bits)),
            Op::Bool(_) => Interval::ANY,
            Op::Hyper(i) => match p.hypers[*i].range {
                Some(r) => Interval {
                    lo: r.lo.map_or(f64::NEG_INFINITY, |b| b.value),
                    hi: r.hi.map_or(f64::INFINITY, |b| b.value),
                },
                None => Interval::ANY,
            },
            Op::Step => Interval {
                lo: 1.0,
                hi: f64::INFINITY,
            },
            Op::Buffer(i) if assumed.get(*i).copied().unwrap_or(false) => Interval::NON_NEGATIVE,
            Op::ScalarState(_) | Op::Param | Op::Grad | Op::Buffer(_) | Op::Input(_) => {
                Interval::ANY
            }
            Op::Draw(crate::functions::Draw::Uniform, _) => Interval { lo: 0.0, hi: 1.0 },
            Op::Draw(crate::functions::Draw::Normal, _) => Interval::ANY,
            Op::Unary(UnOp::Neg, a) => Interval {
                lo: -at(*a).hi,
                hi: -at(*a).lo,
            },
            Op::Unary(UnOp::Not, _) => Interval::ANY,
            Op::Binary(op, a, b) => {
                let (x, y) = (at(*a), at(*b));
                match op {
                    BinOp::Add => Interval {
                        lo: x.lo + y.lo,
                        hi: x.hi + y.hi,
                    },
                    BinOp::Sub => Interval {
                        lo: x.lo - y.hi,
                        hi: x.hi - y.lo,
                    },
                    BinOp::Mul | BinOp::Div if even_product(p, &out, *a, *b) => {
                        Interval::NON_NEGATIVE
                    }
                    BinOp::Mul => mul(x, y),
                    BinOp::Div if x.never_negative() && y.positive() => Interval::NON_NEGATIVE,
                    BinOp::Div if x.never_negative() && y.never_negative() => {
                        Interval::NON_NEGATIVE
                    }
                    BinOp::Pow if x.never_negative() => Interval::NON_NEGATIVE,
                    _ => Interval::ANY,
                }
            }
            Op::Func(f, args) => {
                let arg = |k: usize| args.get(k).map_or(Interval::ANY, |&i| at(i));
                match f {
                    Func::Sqrt | Func::Abs | Func::Exp => Interval::NON_NEGATIVE,
                    Func::Sign => Interval { lo: -1.0, hi: 1.0 },
                    Func::Ln => Interval::ANY,
                    Func::Float => arg(0),
                    Func::Fma => {
                        let prod = match args[..] {
                            [a, b, _] if even_product(p, &out, a, b) => Interval::NON_NEGATIVE,
                            _ => mul(arg(0), arg(1)),
                        };
                        Interval {
                            lo: prod.lo + arg(2).lo,
                            hi: prod.hi + arg(2).hi,
                        }
                    }
                    Func::Max => Interval {
                        lo: arg(0).lo.max(arg(1).lo),
                        hi: arg(0).hi.max(arg(1).hi),
                    },
                    Func::Min => Interval {
                        lo: arg(0).lo.min(arg(1).lo),
                        hi: arg(0).hi.min(arg(1).hi),
                    },
                    Func::Clamp => {
                        // min(max(x, lo), hi)
                        let m = Interval {
                            lo: arg(0).lo.max(arg(1).lo),
                            hi: arg(0).hi.max(arg(1).hi),
                        };
                        Interval {
                            lo: m.lo.min(arg(2).lo),
                            hi: m.hi.min(arg(2).hi),
                        }
                    }
                }
            }
            Op::Select(_, a, b) => at(*a).union(at(*b)),
            Op::Reduce(r, a) => match r {
                Reduction::Norm | Reduction::MaxAbs => Interval::NON_NEGATIVE,
                Reduction::Sum | Reduction::Mean => {
                    if at(*a).never_negative() {
                        Interval::NON_NEGATIVE
                    } else {
                        Interval::ANY
                    }
                }
            },
        };
        out.push(r);
    }
    out
}

/// Which buffers are provably never negative: those whose initial value is,
/// and whose new value is, given that all of them are (the largest such set,
/// found by dropping the ones that fail until none does).
pub fn never_negative_buffers(p: &Program) -> Vec<bool> {
    let mut assumed = vec![true; p.buffers.len()];
    loop {
        let iv = intervals(p, &assumed);
        let mut changed = false;
        for (i, b) in p.buffers.iter().enumerate() {
            if !assumed[i] {
                continue;
            }
            let init_ok = iv[b.init].never_negative();
            let out_ok = p.buffer_out[i].is_none_or(|id| iv[id].never_negative());
            if !(init_ok && out_ok) {
                assumed[i] = false;
                changed = true;
            }
        }
        if !changed {
            return assumed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonneg(text: &str) -> Vec<bool> {
        let p = crate::compile(text).unwrap().remove(0);
        never_negative_buffers(&p)
    }

    #[test]
    fn adams_second_moment_is_never_negative_and_its_first_may_be() {
        let adam = "A { hyper lr = 0.001, b1 = 0.9 where 0 <= b1 < 1, b2 = 0.999 where 0 <= b2 < 1;
            state m = 0, v = 0;
            m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;
            w -= lr * m / (sqrt(v) + 1e-8); }";
        assert_eq!(nonneg(adam), [false, true]);
    }

    #[test]
    fn an_unbounded_hyper_proves_nothing() {
        let r = "A { hyper b2 = 0.999; state v = 0; v = b2 * v + (1 - b2) * g * g; w -= v; }";
        assert_eq!(nonneg(r), [false]);
        let r = "A { state v = 0, s = 0; v = max(v, abs(g)); s = s + sqrt(v); w -= s; }";
        assert_eq!(nonneg(r), [true, true]);
        let r = "A { state v = 0, s = 0; v = max(v, s); s = s - g; w -= s; }";
        assert_eq!(nonneg(r), [true, false]);
        let r = "A { state v = 0; v = min(v, g); w -= v; }";
        assert_eq!(nonneg(r), [false]);
    }
}
