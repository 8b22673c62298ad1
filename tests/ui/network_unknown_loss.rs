//! Compile-fail test: network unknown loss.
use optdsl::network;

network! {
    pub Digits { input 256; dense 10 softmax; loss crossentropy; }
}

fn main() {}
