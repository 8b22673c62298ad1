//! Compile-fail test: network softmax hidden.
use optdsl::network;

network! {
    pub Digits { input 256; dense 128 softmax; dense 10 softmax; loss cross_entropy; }
}

fn main() {}
