use optdsl::optimizer;

optimizer! {
    /// Momentum.
    pub Heavy {
        hyper lr = 0.1 where lr >= 0, mu = 0.9 where 0 <= mu < 1, nesterov = false;
        state v = 0;
        v = mu * v + g;
        w -= if nesterov { lr * (g + mu * v) } else { lr * v };
    }

    /// A misspelt hyperparameter, a switch set to a number and a value
    /// outside its range: each an error at its token.
    pub Nag = Heavy { hyper lrr = 0.5; let nesterov = 1, mu = 1.5; }

    /// A base that is not written above.
    pub Other = Hevy { hyper lr = 0.5; }
}

fn main() {
    // The presets still name types, so their uses resolve.
    let _ = Nag::default();
    let _ = Heavy::default();
}
