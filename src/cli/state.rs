//! `--state f32|bf16|q8`: how the optimizer keeps its state, for `train`,
//! `compare` and `bench` alike.

use optdsl::{storage_for, Compression, DynRule, StateFormat, Storage};

/// The optimizer-state arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct StateArgs {
    /// How the optimizer keeps its state: f32 (the element type), bf16, or
    /// q8 (bitsandbytes' 8-bit block-wise quantization; buffers the compiler
    /// proves never negative take the unsigned map). `optdsl list --state q8`
    /// shows each rule's choice.
    #[arg(long = "state", default_value = "f32", value_parser = parse_format)]
    pub format: StateFormat,
    /// Tensors with fewer elements keep f32 state (bitsandbytes'
    /// `min_8bit_size`).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub state_min_size: usize,
    /// Round bf16 state stochastically (torchao's `bf16_stochastic_round`),
    /// with bits drawn from the run's seed.
    #[arg(long)]
    pub stochastic_rounding: bool,
}

/// Parses `--state`.
pub fn parse_format(s: &str) -> Result<StateFormat, String> {
    StateFormat::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = StateFormat::ALL.iter().map(|f| f.name()).collect();
        format!("`{s}`; use one of {}", names.join(", "))
    })
}

impl StateArgs {
    /// Refuses `--stochastic-rounding` where no buffer of `rules` is kept
    /// in bf16 (by `--state` or by a rule's own declaration): it would round
    /// nothing.
    pub fn check(&self, rules: &[&dyn DynRule]) -> Result<(), optdsl::Error> {
        let bf16 = rules
            .iter()
            .any(|r| storage_for(r.info().program(), self.format).contains(&Storage::Bf16));
        if self.stochastic_rounding && !bf16 {
            return Err(super::setup::invalid(
                "--stochastic-rounding",
                format!(
                    "it rounds bf16 state, and this run keeps none in bf16 (--state {}); add \
                     --state bf16, or leave it out",
                    self.format
                ),
            ));
        }
        Ok(())
    }

    /// The optimizer's compression, stochastic rounding keyed by `seed`.
    pub fn compression(&self, seed: u64) -> Compression {
        Compression {
            format: self.format,
            min_elements: self.state_min_size,
            stochastic_bf16: self.stochastic_rounding.then_some(seed),
        }
    }
}
