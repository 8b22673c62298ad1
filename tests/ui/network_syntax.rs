//! Compile-fail test: network syntax.
use optdsl::network;

network! {
    pub Digits { input 256; dense sigmoid 128; loss cross_entropy; }
}

fn main() {}
