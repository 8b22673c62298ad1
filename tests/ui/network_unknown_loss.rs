use optdsl::network;

network! {
    pub Digits { input 256; dense 10 softmax; loss crossentropy; }
}

fn main() {}
