#!/usr/bin/env python3
"""PyTorch beside `optdsl train` on digit data in CSV the project has never seen.

Two steps:

  * write a CSV optdsl has never read: scikit-learn's 8x8 handwritten digits
    (1797 rows, 64 grey values 0-16, then the label), bundled with
    scikit-learn (no download):

      python3 tools/pytorch_csv.py --write-sklearn-digits /tmp/digits8x8.csv

  * train the same network with PyTorch on a CSV, over several seeds (each
    seed its own random test split of the given fraction and its own init),
    and print the mean test accuracy, to set beside optdsl's runs with the
    same flags:

      python3 tools/pytorch_csv.py /tmp/digits8x8.csv --label last --scale 16 \\
          --test-fraction 0.2 --hidden 128,64 --opt momentum --epochs 20 \\
          --batch 32 --seeds 10
      for s in 0 1 2 3 4 5 6 7 8 9; do
        cargo run --release -- train --data csv:/tmp/digits8x8.csv --label last \\
          --scale 16 --test-fraction 0.2 --hidden 128,64 --optimizer sgd \\
          --set lr=0.1 --set momentum=0.9 --epochs 20 --batch 32 --seed $s | tail -1
      done

The network is `optdsl train`'s: Linear layers with sigmoid between them, a
softmax output and cross-entropy (PyTorch's CrossEntropyLoss on the logits),
PyTorch's default nn.Linear init, mini-batches from a fresh randperm each
epoch with the last partial batch kept. CPU, float32, 2 threads.
"""

import argparse
import gzip
import os
import sys

import numpy as np
import torch
from torch import nn

# The optimizers and settings of `optdsl compare` (label -> torch.optim class, keywords).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_usps import SETTINGS  # noqa: E402


def write_sklearn_digits(path):
    from sklearn.datasets import load_digits

    d = load_digits()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt") as f:
        for x, y in zip(d.data, d.target):
            f.write(",".join(str(int(v)) for v in x) + f",{int(y)}\n")
    print(f"wrote {path}: {len(d.target)} rows of 64 values (0-16) and a label last")


def read_csv(path, label, scale):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if label == "first":
        y, x = arr[:, 0], arr[:, 1:]
    else:
        y, x = arr[:, -1], arr[:, :-1]
    return torch.from_numpy(x / scale).float(), torch.from_numpy(y).long()


def run(x, y, seed, args):
    torch.manual_seed(seed)
    n = len(y)
    perm = torch.randperm(n)
    n_test = max(1, round(args.test_fraction * n))
    test, train = perm[:n_test], perm[n_test:]
    widths = [x.shape[1]] + [int(h) for h in args.hidden.split(",") if h] + [int(y.max()) + 1]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    cls, kw = SETTINGS[args.opt]
    opt = getattr(torch.optim, cls)(model.parameters(), **kw)
    loss_fn = nn.CrossEntropyLoss()
    xtr, ytr = x[train], y[train]
    for _ in range(args.epochs):
        order = torch.randperm(len(ytr))
        for i in range(0, len(ytr), args.batch):
            idx = order[i : i + args.batch]
            opt.zero_grad()
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    with torch.no_grad():
        return (model(x[test]).argmax(1) == y[test]).double().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", nargs="?")
    p.add_argument("--write-sklearn-digits", metavar="PATH")
    p.add_argument("--label", default="first", choices=["first", "last"])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--hidden", default="128,64")
    p.add_argument("--opt", default="momentum", choices=list(SETTINGS))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    if args.write_sklearn_digits:
        write_sklearn_digits(args.write_sklearn_digits)
        return
    if not args.csv:
        sys.exit("give a CSV path, or --write-sklearn-digits PATH")
    torch.set_num_threads(2)
    x, y = read_csv(args.csv, args.label, args.scale)
    accs = []
    for s in range(args.seeds):
        a = run(x, y, s, args)
        accs.append(a)
        print(f"seed {s}: test accuracy {a:.4f}", flush=True)
    a = np.array(accs)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    print(
        f"torch {torch.__version__} {args.opt} {SETTINGS[args.opt][1]}: mean test accuracy "
        f"{a.mean():.4f} (sd {sd:.4f}, {len(a)} seeds)"
    )


if __name__ == "__main__":
    main()
