//! How a state buffer is stored: in the element type, as bfloat16, or as
//! bitsandbytes' 8-bit block-wise quantization (a signed or an unsigned
//! dynamic map, blocks of [`QBLOCK`] elements, one f32 absmax per block).
//! A rule declares it (`state m: q8 = 0, v: uq8 = 0`), or the runtime
//! chooses it for every buffer (`--state q8`, [`Storage::for_format`]).

use std::fmt;

/// Elements per quantization block (bitsandbytes' `blocksize=256`).
pub const QBLOCK: usize = 256;

/// The storage of one state buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Storage {
    /// The element type (f32 or f64): what the step computes in.
    #[default]
    Full,
    /// bfloat16, rounded to nearest even (or stochastically, a run-time
    /// choice).
    Bf16,
    /// One byte an element on a 256-entry dynamic map, per block of
    /// [`QBLOCK`] scaled by the block's largest magnitude; `signed` chooses
    /// bitsandbytes' `create_dynamic_map(signed=True)`, else the unsigned map
    /// (for values that are never negative).
    Q8 {
        /// Whether the map covers negative values.
        signed: bool,
    },
}

/// The names the language accepts after `:` in a state declaration.
pub const STORAGE_NAMES: [&str; 3] = ["q8", "uq8", "bf16"];

impl Storage {
    /// The storage a declaration names (`q8`, `uq8`, `bf16`).
    pub fn from_name(name: &str) -> Option<Storage> {
        match name {
            "q8" => Some(Storage::Q8 { signed: true }),
            "uq8" => Some(Storage::Q8 { signed: false }),
            "bf16" => Some(Storage::Bf16),
            _ => None,
        }
    }

    /// The name as the language writes it (`f32` stands for the element type).
    pub fn name(self) -> &'static str {
        match self {
            Storage::Full => "full",
            Storage::Bf16 => "bf16",
            Storage::Q8 { signed: true } => "q8",
            Storage::Q8 { signed: false } => "uq8",
        }
    }

    /// Bytes kept per element for an element type of `elem` bytes, block
    /// maxima included (an f32 per [`QBLOCK`] elements).
    pub fn bytes_per_element(self, elem: usize) -> f64 {
        match self {
            Storage::Full => elem as f64,
            Storage::Bf16 => 2.0,
            Storage::Q8 { .. } => 1.0 + 4.0 / QBLOCK as f64,
        }
    }

    /// The storage a run-time format gives a buffer: `q8` takes the unsigned
    /// map where the compiler proves the buffer never negative
    /// (`never_negative`), the signed one elsewhere.
    pub fn for_format(format: StateFormat, never_negative: bool) -> Storage {
        match format {
            StateFormat::Full => Storage::Full,
            StateFormat::Bf16 => Storage::Bf16,
            StateFormat::Q8 => Storage::Q8 {
                signed: !never_negative,
            },
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The storage of each buffer of `p` under the run-time `format`: a buffer
/// the rule declares compressed keeps its declaration; the others take
/// `format`, the 8-bit ones on the unsigned map where
/// [`crate::bounds::never_negative_buffers`] proves them never negative.
pub fn storage_for(p: &crate::Program, format: StateFormat) -> Vec<Storage> {
    let proven = crate::bounds::never_negative_buffers(p);
    (0..p.buffers.len())
        .map(|i| match p.storage.get(i).copied().unwrap_or_default() {
            Storage::Full => Storage::for_format(format, proven.get(i).copied().unwrap_or(false)),
            declared => declared,
        })
        .collect()
}

/// A run-time choice of storage for every buffer of a rule (`--state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StateFormat {
    /// The element type (the rule's own declarations hold).
    #[default]
    Full,
    /// bfloat16.
    Bf16,
    /// 8-bit block-wise quantization, the map chosen per buffer.
    Q8,
}

impl StateFormat {
    /// Every format, in the order `--state` lists them.
    pub const ALL: [StateFormat; 3] = [StateFormat::Full, StateFormat::Bf16, StateFormat::Q8];

    /// The name `--state` takes (`f32` for the element type).
    pub fn name(self) -> &'static str {
        match self {
            StateFormat::Full => "f32",
            StateFormat::Bf16 => "bf16",
            StateFormat::Q8 => "q8",
        }
    }

    /// The format called `name` (`f32`, `bf16`, `q8`).
    pub fn from_name(name: &str) -> Option<StateFormat> {
        StateFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for StateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in STORAGE_NAMES {
            assert_eq!(Storage::from_name(n).unwrap().name(), n);
        }
        assert_eq!(Storage::from_name("int8"), None);
        for f in StateFormat::ALL {
            assert_eq!(StateFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(
            Storage::for_format(StateFormat::Q8, true),
            Storage::Q8 { signed: false }
        );
        assert!((Storage::Q8 { signed: true }.bytes_per_element(4) - 1.015625).abs() < 1e-12);
    }

    fn errors(text: &str) -> Vec<String> {
        crate::compile(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|d| format!("{}: {}", &text[d.span.start..d.span.end], d.message))
            .collect()
    }

    #[test]
    fn declarations_are_checked_at_the_storage_name() {
        let adam = "A { hyper b1 = 0.9 where 0 <= b1 < 1, b2 = 0.999 where 0 <= b2 < 1;
            state m: uq8 = 0, v: uq8 = 0;
            m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;
            w -= m / (sqrt(v) + 1e-8); }";
        let e = errors(adam);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("uq8: `m` is declared `uq8`"), "{e:?}");
        let ok = adam.replace("m: uq8", "m: q8");
        let p = crate::compile(&ok).unwrap().remove(0);
        assert_eq!(
            p.storage,
            [Storage::Q8 { signed: true }, Storage::Q8 { signed: false }]
        );
        let e = errors("A { state m: qq8 = 0; m = g; w -= m; }");
        assert!(
            e[0].starts_with("qq8: unknown storage `qq8`; did you mean `q8`?"),
            "{e:?}"
        );
        let e = errors("A { hyper lr: bf16 = 0.1; scalar s: q8 = 0; s = s + 1; w -= lr * g; }");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("`lr` is a hyperparameter") && e[1].contains("`s` is a scalar"));
        let p = crate::compile("A { state m: bf16 = 0; m = g; w -= m; }").unwrap();
        assert_eq!(p[0].storage, [Storage::Bf16]);
    }
}
