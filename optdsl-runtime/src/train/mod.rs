//! Training a network by mini-batches. One file a job: the settings
//! ([`config`]), the [`Trainer`] and its epoch loop ([`trainer`]), what it
//! gives rules that take inputs (`inputs`), the records and history files
//! ([`history`], [`files`]), checkpoints and resuming ([`resume`]), progress
//! callbacks ([`observer`]), evaluation and timing ([`eval`]) and the
//! data-parallel extension point ([`strategy`]).

pub mod config;
pub mod eval;
pub mod files;
pub mod history;
mod inputs;
pub mod observer;
pub mod resume;
pub mod strategy;
pub mod trainer;

pub use config::TrainConfig;
pub use eval::{evaluate, evaluate_rows, matmul_epoch_seconds};
pub use files::{check_writable_dir, write_atomically};
pub use history::{divergence, EpochRecord, History};
pub use observer::{Observer, Silent};
pub use resume::TrainerState;
pub use strategy::{Alone, DataParallel};
pub use trainer::Trainer;
