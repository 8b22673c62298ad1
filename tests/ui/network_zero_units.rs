//! Compile-fail test: network zero units.
use optdsl::network;

network! {
    pub Digits { input 256; dense 0 sigmoid; dense 10 softmax; loss cross_entropy; }
}

fn main() {}
