//! Compile-fail test: network missing input.
use optdsl::network;

network! {
    pub Digits { dense 128 sigmoid; dense 10 softmax; loss cross_entropy; }
}

fn main() {}
