//! Compile-fail test: network unknown activation.
use optdsl::network;

network! {
    pub Digits { input 256; dense 128 sigmod; dense 10 softmax; loss cross_entropy; }
}

fn main() {}
