pub use optdsl_runtime::*;
