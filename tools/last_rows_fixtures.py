#!/usr/bin/env python3
"""Writes tests/golden/last-rows/extra/*.json: torch 2.15 trajectories for the
L-BFGS options and SparseAdam cases the shared last-rows fixtures leave out
(their format: tests/golden/last-rows/README.md, and extra/README.md).

  * lbfgs-maximize: maximize=True on the negated objective
    (`neg-quadratic-rosenbrock-12`), with the strong-Wolfe line search;
  * lbfgs-max-eval: max_eval=7 below max_iter=10's default of 12;
  * lbfgs-tolerance-change: tolerance_change=1e-3 ends steps early;
  * lbfgs-history-1: history_size=1, strong-Wolfe, lr 0.8;
  * sparse-adam-duplicates: gradients with repeated, unsorted rows, as
    given to the optimizer (torch coalesces them, summing repeats), with
    maximize and an empty gradient at one step.

    .venv/bin/python tools/last_rows_fixtures.py
"""

import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "last-rows", "extra")
SCALES = [100.0, 30.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 1.0, 1.0, 2.0, 0.5]
FORMULA = (
    "1/2 sum_i scales_i (w_i - 1)^2 + (1 - w_8)^2 + 10 (w_9 - w_8^2)^2 (0-based indices)"
)


def objective(w, sign):
    s = torch.tensor(SCALES, dtype=w.dtype)
    f = 0.5 * (s * (w - 1) ** 2).sum() + (1 - w[8]) ** 2 + 10 * (w[9] - w[8] ** 2) ** 2
    return sign * f


def lbfgs(name, hyper, steps, seed, negate=False):
    torch.manual_seed(seed)
    w = (torch.rand(12, dtype=torch.float64) * 3 - 1.5).requires_grad_()
    params0 = w.detach().tolist()
    opt = torch.optim.LBFGS([w], **hyper)
    calls = [0]

    def closure():
        calls[0] += 1
        opt.zero_grad()
        loss = objective(w, -1.0 if negate else 1.0)
        loss.backward()
        return loss

    params, losses, evals = [], [], []
    for _ in range(steps):
        before = calls[0]
        losses.append(opt.step(closure).item())
        evals.append(calls[0] - before)
        params.append(w.detach().tolist())
    kind = "neg-quadratic-rosenbrock-12" if negate else "quadratic-rosenbrock-12"
    write(
        name,
        {
            "name": name,
            "optimizer": "LBFGS",
            "source": f"torch {torch.__version__} torch.optim.LBFGS",
            "hyper": hyper,
            "dtype": "f64",
            "tolerance": {"rel": 1e-9, "abs": 1e-12},
            "objective": {
                "kind": kind,
                "scales": SCALES,
                "formula": ("-(" + FORMULA + ")") if negate else FORMULA,
            },
            "params0": params0,
            "params": params,
            "losses": losses,
            "evaluations": evals,
        },
    )


def sparse_adam(name, hyper, steps, seed):
    torch.manual_seed(seed)
    rows, cols = 12, 3
    table = torch.randn(rows, cols, dtype=torch.float64)
    params0 = table.flatten().tolist()
    w = table.clone().requires_grad_()
    opt = torch.optim.SparseAdam([w], **hyper)
    grads, params = [], []
    for k in range(steps):
        n = 0 if k == 3 else int(torch.randint(1, 7, ()).item())
        idx = torch.randint(0, rows, (n,))
        vals = torch.randn(n, cols, dtype=torch.float64) * 2
        w.grad = torch.sparse_coo_tensor(idx.unsqueeze(0), vals, (rows, cols))
        opt.step()
        grads.append({"rows": idx.tolist(), "values": vals.tolist()})
        params.append(w.detach().flatten().tolist())
    write(
        name,
        {
            "name": name,
            "optimizer": "SparseAdam",
            "source": f"torch {torch.__version__} torch.optim.SparseAdam (uncoalesced sparse_coo_tensor gradients)",
            "hyper": hyper,
            "shape": [rows, cols],
            "dtype": "f64",
            "tolerance": {"rel": 1e-9, "abs": 1e-12},
            "note": "rows as given to the optimizer: unsorted, repeated (summed by coalesce), empty at step 4",
            "params0": params0,
            "sparse_grads": grads,
            "params": params,
        },
    )


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(data, f)
        f.write("\n")
    print("wrote", name)


def main():
    torch.set_num_threads(1)
    lbfgs("lbfgs-maximize", {"lr": 1.0, "max_iter": 5, "line_search_fn": "strong_wolfe", "maximize": True}, 5, 11, negate=True)
    lbfgs("lbfgs-max-eval", {"lr": 0.7, "max_iter": 10, "max_eval": 7}, 6, 12)
    lbfgs("lbfgs-tolerance-change", {"lr": 1.0, "max_iter": 20, "tolerance_change": 1e-3}, 5, 13)
    # Three steps: with one pair of history, last-bit differences (the order
    # of a dot product) grow ~100x a step here; a fourth step leaves 1e-9.
    lbfgs("lbfgs-history-1", {"lr": 0.8, "max_iter": 6, "history_size": 1, "line_search_fn": "strong_wolfe"}, 3, 14)
    sparse_adam("sparse-adam-duplicates", {"lr": 0.02, "betas": [0.7, 0.95], "eps": 1e-7, "maximize": True}, 25, 15)


if __name__ == "__main__":
    main()
