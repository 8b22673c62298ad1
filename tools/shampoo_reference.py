#!/usr/bin/env python3
"""numpy reference for examples/shampoo.rs: Shampoo (Gupta, Koren & Singer
2018, arXiv 1802.09568) on one matrix parameter, with the inverse fourth roots
taken exactly by an eigendecomposition (numpy.linalg.eigh), not by the
Newton iteration the example runs, so the test checks the iteration too.

    L <- L + G G^T;  R <- R + G^T G;
    W <- W - lr (L + eps I)^(-1/4) G (R + eps I)^(-1/4)

Writes tests/golden/shampoo/shampoo.json in the golden-trajectory format
(params0, grads, params, shape, hyper, tolerance):

    .venv/bin/python tools/shampoo_reference.py
"""

import json
import os

import numpy as np

ROWS, COLS, STEPS = 6, 4, 12
LR, EPS = 0.1, 1e-3


def inv_fourth_root(a):
    vals, vecs = np.linalg.eigh(a)
    return (vecs * vals ** -0.25) @ vecs.T


def main():
    rng = np.random.default_rng(7)
    target = rng.standard_normal((ROWS, COLS))
    scales = np.diag(np.linspace(0.5, 3.0, ROWS))
    w = rng.standard_normal((ROWS, COLS))
    params0 = w.ravel().tolist()
    l = np.zeros((ROWS, ROWS))
    r = np.zeros((COLS, COLS))
    grads, params = [], []
    for _ in range(STEPS):
        # An ill-conditioned least-squares objective with a little noise.
        g = scales @ (scales @ w - target) + 0.01 * rng.standard_normal((ROWS, COLS))
        l += g @ g.T
        r += g.T @ g
        w = w - LR * inv_fourth_root(l + EPS * np.eye(ROWS)) @ g @ inv_fourth_root(
            r + EPS * np.eye(COLS)
        )
        grads.append(g.ravel().tolist())
        params.append(w.ravel().tolist())
    out = {
        "name": "shampoo",
        "optimizer": "Shampoo",
        "source": f"numpy {np.__version__}: tools/shampoo_reference.py (exact inverse fourth roots by eigh)",
        "hyper": {"lr": LR, "eps": EPS},
        "shape": [ROWS, COLS],
        "dtype": "f64",
        "tolerance": {"rel": 1e-8, "abs": 1e-10},
        "params0": params0,
        "grads": grads,
        "params": params,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "golden", "shampoo", "shampoo.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
