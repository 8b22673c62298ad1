#!/usr/bin/env python3
"""PyTorch's full-batch L-BFGS on USPS, beside `optdsl train --optimizer lbfgs --batch all`.

The course's digit network (256-128-64-10, sigmoid, softmax + cross-entropy)
built after torch.manual_seed(seed) with nn.Linear's default init (what
`optdsl train --init torch --rng torch --seed SEED` draws), then one
`torch.optim.LBFGS.step(closure)` per epoch over the whole training set, the
closure the mean cross-entropy and its gradient. Prints per epoch the loss at
the step's start, the closure calls and the test accuracy, in the format of
optdsl's epoch lines, to compare with

    optdsl train --optimizer lbfgs --batch all --epochs 20 --init torch --rng torch

    .venv/bin/python tools/torch_lbfgs_usps.py --epochs 20 [--dtype f64]
        [--strong-wolfe] [--lr 1] [--history-size 100] [--max-iter 20]
"""

import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_usps import accuracy, load, make_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="f32", choices=["f32", "f64"])
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--max-iter", type=int, default=20)
    p.add_argument("--history-size", type=int, default=100)
    p.add_argument("--strong-wolfe", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.dtype == "f32" else torch.float64
    xtr, ytr = load("usps.train.gz")
    xte, yte = load("usps.test.gz")
    xtr, xte = xtr.to(dtype), xte.to(dtype)
    torch.manual_seed(args.seed)
    model = make_model("default", dtype)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=args.lr,
        max_iter=args.max_iter,
        history_size=args.history_size,
        line_search_fn="strong_wolfe" if args.strong_wolfe else None,
    )
    loss_fn = nn.CrossEntropyLoss()
    calls = [0]

    def closure():
        calls[0] += 1
        opt.zero_grad()
        loss = loss_fn(model(xtr), ytr)
        loss.backward()
        return loss

    for epoch in range(1, args.epochs + 1):
        before = calls[0]
        loss = opt.step(closure)
        acc = accuracy(model, xte, yte)
        print(
            f"epoch {epoch:>3}/{args.epochs}  train loss {loss.item():.4f}  "
            f"evaluations {calls[0] - before:>2}  test acc {acc:.4f}"
        )
    print(f"torch lbfgs: {calls[0]} objective evaluations in {args.epochs} steps")
    print(f"test accuracy: {accuracy(model, xte, yte):.4f}")


if __name__ == "__main__":
    main()
