//! The random generators a training run can draw its initial weights and
//! mini-batch orders from: ChaCha8 (optdsl's own) or a generator that draws
//! exactly what PyTorch's CPU generator draws after `torch.manual_seed(seed)`,
//! so that a run repeats a PyTorch script's run number for number.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which generator a run draws from.
///
/// - [`Generator::ChaCha8`]: the network's initial weights from a ChaCha8
///   generator seeded with the seed, each epoch's order from a second one
///   (stream 1): optdsl's default.
/// - [`Generator::Torch`]: one generator for both, drawing what this PyTorch
///   script draws (CPU, any dtype):
///
///   ```python
///   torch.manual_seed(seed)
///   model = nn.Sequential(nn.Linear(256, 128), nn.Sigmoid(), ...)  # default init
///   # for layers whose init is xavier / he, after the model is built:
///   #   nn.init.xavier_uniform_(m.weight)   (or kaiming_uniform_(m.weight, nonlinearity="relu"))
///   #   nn.init.zeros_(m.bias)
///   for epoch in range(epochs):
///       perm = torch.randperm(n)            # mini-batches perm[i:i+batch]
///   ```
///
///   so the same seed gives the same initial parameters (bit for bit, in
///   float32; a float64 network starts from the same float32 values, as
///   `model.to(torch.float64)` does) and the same mini-batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// optdsl's ChaCha8 generators.
    #[default]
    ChaCha8,
    /// PyTorch's CPU generator (MT19937) after `torch.manual_seed(seed)`.
    Torch,
}

impl Generator {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Generator::ChaCha8 => "chacha8",
            Generator::Torch => "torch",
        }
    }

    /// Whether this is the default ([`Generator::ChaCha8`]).
    pub fn is_default(&self) -> bool {
        *self == Generator::ChaCha8
    }
}

impl std::fmt::Display for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Generator {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "chacha8" | "chacha" => Ok(Generator::ChaCha8),
            "torch" | "pytorch" => Ok(Generator::Torch),
            _ => Err(Error::Invalid {
                what: "rng".into(),
                reason: format!("`{s}`; use chacha8 or torch"),
            }),
        }
    }
}

const N: usize = 624;
const M: usize = 397;

/// PyTorch's CPU generator: a 32-bit Mersenne Twister (MT19937) seeded as
/// `torch.manual_seed(seed)` seeds it (with the seed's low 32 bits), with
/// PyTorch's ways of turning its words into uniform floats and permutations.
///
/// ```
/// use optdsl_runtime::rng::TorchGenerator;
/// // MT19937's first word for seed 0, as after torch.manual_seed(0):
/// let mut g = TorchGenerator::manual_seed(0);
/// assert_eq!(g.random(), 2357136044);
/// // torch.manual_seed(0); torch.randperm(10).tolist()  (PyTorch 2.15):
/// let mut g = TorchGenerator::manual_seed(0);
/// assert_eq!(g.randperm(10), [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorchGenerator {
    /// The 624 words of state.
    state: Vec<u32>,
    /// The next word to temper; 624 means the state must be regenerated.
    next: usize,
}

impl TorchGenerator {
    /// The generator after `torch.manual_seed(seed)`.
    pub fn manual_seed(seed: u64) -> Self {
        let mut state = vec![0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        TorchGenerator { state, next: N }
    }

    /// The next 32-bit word (PyTorch's `CPUGeneratorImpl::random()`).
    pub fn random(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Skips `n` words.
    pub fn skip(&mut self, n: u64) {
        for _ in 0..n {
            self.random();
        }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        let s = &mut self.state;
        for i in 0..N {
            let y = (s[i] & UPPER) | (s[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            s[i] = s[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    /// A float32 uniform on `[from, to)` as `tensor.uniform_(from, to)` draws
    /// one element of a float32 tensor: the word's low 24 bits times 2^-24,
    /// scaled in double precision with `from` and `to` first rounded to
    /// float32, then rounded to float32.
    pub fn uniform_f32(&mut self, from: f64, to: f64) -> f32 {
        let (from, to) = (f64::from(from as f32), f64::from(to as f32));
        let x = f64::from(self.random() & 0x00ff_ffff) * (1.0 / (1u32 << 24) as f64);
        (x * (to - from) + from) as f32
    }

    /// `torch.randperm(n)` (for `n` below 2^32 / 20, PyTorch's Fisher-Yates
    /// walk from the front: position `i` swaps with `i + random() % (n - i)`).
    pub fn randperm(&mut self, n: usize) -> Vec<usize> {
        let mut r: Vec<usize> = (0..n).collect();
        self.randperm_into(&mut r);
        r
    }

    /// [`TorchGenerator::randperm`] of `order.len()` into `order` (its old
    /// contents are overwritten with `0..len` first).
    pub fn randperm_into(&mut self, order: &mut [usize]) {
        let n = order.len();
        assert!(
            (n as u64) < u64::from(u32::MAX) / 20,
            "randperm of {n} rows: PyTorch draws larger permutations another way"
        );
        for (i, r) in order.iter_mut().enumerate() {
            *r = i;
        }
        for i in 0..n.saturating_sub(1) {
            let z = (self.random() as usize) % (n - i);
            order.swap(i, i + z);
        }
    }
}

/// The half-widths of the uniform distributions PyTorch's initializers draw
/// from, computed as `torch.nn.init` computes them (in double precision, in
/// the same order of operations, so that the float32 bounds agree).
pub mod torch_bounds {
    /// `nn.Linear`'s weights: `kaiming_uniform_(w, a=math.sqrt(5))`.
    pub fn linear_weight(fan_in: usize) -> f64 {
        let a = 5f64.sqrt();
        let gain = (2.0 / (1.0 + a * a)).sqrt();
        let std = gain / (fan_in as f64).sqrt();
        3f64.sqrt() * std
    }

    /// `nn.Linear`'s biases: `1 / math.sqrt(fan_in)`.
    pub fn linear_bias(fan_in: usize) -> f64 {
        1.0 / (fan_in as f64).sqrt()
    }

    /// `xavier_uniform_(w)` (gain 1).
    pub fn xavier(fan_in: usize, fan_out: usize) -> f64 {
        let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
        3f64.sqrt() * std
    }

    /// `kaiming_uniform_(w, nonlinearity="relu")`.
    pub fn he(fan_in: usize) -> f64 {
        let std = 2f64.sqrt() / (fan_in as f64).sqrt();
        3f64.sqrt() * std
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_reference_words() {
        // The MT19937 reference implementation's outputs: the 10000th word
        // for seed 5489 is 4123659995 (C++11 [rand.predef]); seed 0 starts 2357136044.
        let mut g = TorchGenerator::manual_seed(5489);
        g.skip(9999);
        assert_eq!(g.random(), 4_123_659_995);
        let mut g = TorchGenerator::manual_seed(0);
        assert_eq!(
            [g.random(), g.random(), g.random()],
            [2_357_136_044, 2_546_248_239, 3_071_714_933]
        );
    }

    #[test]
    fn uniform_matches_pytorch() {
        // PyTorch 2.15: torch.manual_seed(42);
        // torch.empty(4).uniform_(-1 / math.sqrt(3), 0.25).tolist()
        let mut g = TorchGenerator::manual_seed(42);
        let got: Vec<f64> = (0..4)
            .map(|_| f64::from(g.uniform_f32(-1.0 / 3f64.sqrt(), 0.25)))
            .collect();
        let torch: [f64; 4] = [
            0.152_595_445_513_725_28,
            0.179_678_499_698_638_92,
            -0.260_587_841_272_354_1,
            0.216_331_511_735_916_14,
        ];
        assert_eq!(got, torch);
    }

    #[test]
    fn seeds_use_the_low_32_bits() {
        let mut a = TorchGenerator::manual_seed(7);
        let mut b = TorchGenerator::manual_seed(7 + (1 << 32));
        assert_eq!(a.random(), b.random());
    }

    #[test]
    fn randperm_is_a_permutation() {
        let mut g = TorchGenerator::manual_seed(3);
        let mut p = g.randperm(1000);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
        assert!(g.randperm(0).is_empty());
        assert_eq!(g.randperm(1), vec![0]);
    }

    #[test]
    fn generator_names_round_trip() {
        for g in [Generator::ChaCha8, Generator::Torch] {
            assert_eq!(g.name().parse::<Generator>().unwrap(), g);
        }
        let e = "mt".parse::<Generator>().unwrap_err().to_string();
        assert!(e.contains("chacha8 or torch"), "{e}");
    }
}
