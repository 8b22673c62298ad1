//! Compile-fail test: network loss needs softmax.
use optdsl::network;

network! {
    pub Digits { input 256; dense 128 sigmoid; dense 10 sigmoid; loss cross_entropy; }
}

fn main() {}
