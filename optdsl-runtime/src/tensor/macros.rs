//! The macros the tensor executor's loops are written with: an operator or
//! function as a closure of its own (so each loop vectorizes), and a body
//! compiled per vector level.

/// Runs `$body` with `$f` bound to `$op`'s arithmetic as a closure of its
/// own (each operator's loop compiled apart, so it vectorizes; the maths is
/// `BinOp::arith`, the one definition).
macro_rules! per_op {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            BinOp::Add => {
                let $f = |x: F, y: F| BinOp::Add.arith(x, y);
                $body
            }
            BinOp::Sub => {
                let $f = |x: F, y: F| BinOp::Sub.arith(x, y);
                $body
            }
            BinOp::Mul => {
                let $f = |x: F, y: F| BinOp::Mul.arith(x, y);
                $body
            }
            BinOp::Div => {
                let $f = |x: F, y: F| BinOp::Div.arith(x, y);
                $body
            }
            other => {
                let $f = move |x: F, y: F| other.arith(x, y);
                $body
            }
        }
    };
}

/// As [`per_op!`] for a function of one or two numbers (`Func::apply`).
macro_rules! per_func {
    ($func:expr, |$f:ident| $body:expr) => {
        match $func {
            Func::Sqrt => {
                let $f = |x: F, _: F| Func::Sqrt.apply(x, x, x);
                $body
            }
            Func::Abs => {
                let $f = |x: F, _: F| Func::Abs.apply(x, x, x);
                $body
            }
            Func::Min => {
                let $f = |x: F, y: F| Func::Min.apply(x, y, y);
                $body
            }
            Func::Max => {
                let $f = |x: F, y: F| Func::Max.apply(x, y, y);
                $body
            }
            Func::Float => {
                let $f = |x: F, _: F| x;
                $body
            }
            other => {
                let $f = move |x: F, y: F| other.apply(x, y, y);
                $body
            }
        }
    };
}

/// Runs `$body(args)` compiled for the best vector level in force
/// ([`crate::exec::level_for`]): copies of the body built with AVX2 or
/// AVX-512 (and FMA, which Rust never contracts into, so the bits are those
/// of the portable copy).
macro_rules! simd {
    ($body:ident, $avx2:ident, $avx512:ident, <$($g:ident $(: $b:path)?),*>, ($($p:ident: $t:ty),*), ($($a:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $avx2<$($g $(: $b)?),*>($($p: $t),*) {
                $body($($p),*)
            }
            #[target_feature(enable = "avx512f,fma")]
            unsafe fn $avx512<$($g $(: $b)?),*>($($p: $t),*) {
                $body($($p),*)
            }
            match crate::exec::level_for(true) {
                // SAFETY: the level in force is one this CPU has.
                crate::exec::Simd::Avx512 => return unsafe { $avx512($($a),*) },
                // SAFETY: as above.
                crate::exec::Simd::Avx2 => return unsafe { $avx2($($a),*) },
                crate::exec::Simd::Portable => {}
            }
        }
        $body($($a),*)
    }};
}
