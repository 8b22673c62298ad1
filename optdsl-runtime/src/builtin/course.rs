//! The course's first-order rules: gradient descent / SGD with PyTorch's options.

use super::BuiltinInfo;
use crate::optimizer;

optimizer! {
    /// Stochastic gradient descent, PyTorch's `torch.optim.SGD`: weight decay,
    /// momentum (the buffer starts at the first gradient), dampening, Nesterov
    /// and maximize.
    pub Sgd {
        hyper lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0,
              nesterov = false, maximize = false;
        state buf = 0;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        if momentum != 0 {
            buf = if t == 1 { d } else { momentum * buf + (1 - dampening) * d };
            d = if nesterov { d + momentum * buf } else { buf };
        }
        w -= lr * d;
    }
}

/// The course's rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[BuiltinInfo {
    name: "sgd",
    family: "sgd",
    reference: "torch.optim.SGD; Robbins & Monro 1951",
    make: || Box::new(Sgd::default()),
}];
