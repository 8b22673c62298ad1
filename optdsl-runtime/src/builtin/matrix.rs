//! Rules with shapes: PyTorch's `Adafactor` (a second moment kept as one
//! number per row and one per column) and `Muon` (momentum orthogonalized by
//! a Newton-Schulz iteration of matrix products), written in the language
//! and run by the tensor executor ([`crate::tensor`]).

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// PyTorch's `torch.optim.Adafactor` (Shazeer & Stern 2018, "Adafactor:
    /// Adaptive Learning Rates with Sublinear Memory Cost", arXiv
    /// 1804.04235; torch/optim/_adafactor.py). A matrix keeps its second
    /// moment factored, `r` per row and `c` per column (means of g², not
    /// sums); a vector keeps it whole. With ρ = min(lr, 1/√t) and
    /// α = max(ε₂, ‖w‖/√n) ρ:
    ///
    /// r ← r + t^β (mean_row(g²) − r);  c ← c + t^β (mean_col(g²) − c);
    /// V = r c / max(mean(r), ε₁);  u = g / √max(V, ε₁²);
    /// w ← (1 − lr λ) w − α u / max(1, rms(u)/d).
    ///
    /// `eps1 = 0` stands for PyTorch's `eps=(None, ...)`: the element type's
    /// machine epsilon. Tensors of more than two dimensions are factored as
    /// the matrix `[d0, d1 * ... * dk]` (PyTorch factors the last two).
    pub Adafactor {
        hyper lr = 1e-2 where lr >= 0, beta2_decay = -0.8 where beta2_decay <= 0,
              eps1 = 0 where eps1 >= 0, eps2 = 1e-3 where eps2 >= 0, d = 1 where d >= 1,
              weight_decay = 0 where weight_decay >= 0, maximize = false;
        let grad = if maximize { -g } else { g };
        let e1 = if eps1 > 0 { eps1 } else { epsilon };
        let beta = t ^ beta2_decay;
        let rho = min(lr, 1 / sqrt(t));
        let alpha = max(eps2, norm(w) / sqrt(numel)) * rho;
        w *= 1 - lr * weight_decay;
        let var = grad;
        if matrix {
            state r: [rows] = 0, c: [cols] = 0;
            r = r + beta * (row_norm(grad)^2 / cols - r);
            c = c + beta * (col_norm(grad)^2 / rows - c);
            var = r * c / max(mean(r), e1);
        } else {
            state v = 0;
            v = v + beta * (grad * grad - v);
            var = v;
        }
        let u = 1 / sqrt(max(var, e1 * e1)) * grad;
        let denom = max(1, norm(u) / (sqrt(numel) * d));
        w += -alpha / denom * u;
    }
}

optimizer! {
    /// PyTorch's `torch.optim.Muon` (Jordan et al. 2024, "Muon: an optimizer
    /// for hidden layers"; torch/optim/_muon.py): momentum, then the
    /// quintic Newton-Schulz iteration that pushes its singular values
    /// towards 1, on the smaller Gram matrix (`x x^T` for a wide matrix,
    /// `x^T x` for a tall one: PyTorch transposes a tall matrix instead, the
    /// same products):
    ///
    /// b ← b + (1 − μ)(g − b);  x = nesterov ? g + μ (b − g) : b;  x ← x / max(‖x‖, ε);
    /// `ns_steps` times: A = x x^T;  x ← a x + (b A + c A A) x;
    /// w ← (1 − lr λ) w − lr · s · x,  s = √max(1, rows/cols)
    /// (`match_rms_adamw`: s = 0.2 √max(rows, cols)).
    ///
    /// The iteration runs in the element type (PyTorch runs it in
    /// bfloat16). Vectors are refused: step them with another rule.
    pub Muon {
        hyper lr = 1e-3 where lr >= 0, weight_decay = 0.1 where weight_decay >= 0,
              momentum = 0.95 where 0 <= momentum < 1, nesterov = true,
              ns_a = 3.4445, ns_b = -4.775, ns_c = 2.0315,
              ns_steps = 5 where 0 <= ns_steps < 100, eps = 1e-7 where eps >= 0,
              match_rms_adamw = false;
        state buf = 0;
        buf = buf + (1 - momentum) * (g - buf);
        let x = if nesterov { g + momentum * (buf - g) } else { buf };
        x = x / max(norm(x), eps);
        if rows > cols {
            repeat ns_steps {
                let a = x^T @ x;
                x = ns_a * x + x @ (ns_b * a + ns_c * (a @ a));
            }
        } else {
            repeat ns_steps {
                let a = x @ x^T;
                x = ns_a * x + (ns_b * a + ns_c * (a @ a)) @ x;
            }
        }
        let scale = if match_rms_adamw { 0.2 * sqrt(max(rows, cols)) } else { sqrt(max(1, rows / cols)) };
        w *= 1 - lr * weight_decay;
        w -= lr * scale * x;
    }
}

/// The rules with shapes.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "adafactor",
        family: Family::Adaptive,
        reference: "torch.optim.Adafactor; Shazeer & Stern 2018 (arXiv 1804.04235)",
        make: || Box::new(Adafactor::default()),
    },
    BuiltinInfo {
        name: "muon",
        family: Family::Matrix,
        reference: "torch.optim.Muon; Jordan et al. 2024 (kellerjordan.github.io/posts/muon)",
        make: || Box::new(Muon::default()),
    },
];
