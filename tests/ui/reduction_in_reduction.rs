use optdsl::optimizer;

optimizer! {
    pub Lamb {
        w -= g * norm(g / norm(w));
    }
}

fn main() {}
