#!/usr/bin/env python3
"""PyTorch reference runs for `optdsl compare` on USPS.

Trains the course's digit network (256-128-64-10, sigmoid hidden layers,
softmax + cross-entropy, batch 32, 20 epochs) in PyTorch on the bundled files
optdsl-runtime/data/usps.{train,test}.gz, read directly, inputs mapped
x -> (x + 1) / 2 (ink -> 1) as optdsl does. The optimizers and settings are
those of the issue / `optdsl compare` (torch.optim.SGD lr 0.5; momentum 0.9
lr 0.1; Nesterov; Adagrad 0.05; RMSprop 1e-3; Adadelta 1.0; Adam 1e-3).

Two modes:

  * seeds (default): for each optimizer, init and seed, the usual PyTorch
    script: torch.manual_seed(seed), the model built, a fresh randperm per
    epoch (what DataLoader(shuffle=True) draws), the last partial batch kept;
    prints the final test accuracy of each run and mean/sd/min/max per
    optimizer and init.

      python3 tools/pytorch_usps.py --seeds 10 --init default,xavier \
          --opt momentum,nesterov

  * replay: trains from optdsl's initial weights in optdsl's mini-batch order,
    as written by `cargo run --release --example export_run -- DIR ...`
    (plain text files, see examples/export_run.rs), and prints per-epoch
    train loss and test accuracy beside optdsl's own history, then the largest
    difference of the final parameters.

      python3 tools/pytorch_usps.py --replay /tmp/run-momentum --dtype f64

CPU only, torch.set_num_threads(2); a 20-epoch run takes a few seconds.
"""

import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "optdsl-runtime", "data")

# label -> (torch.optim class name, keyword arguments), as `optdsl compare`.
SETTINGS = {
    "sgd": ("SGD", dict(lr=0.5)),
    "momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    "adagrad": ("Adagrad", dict(lr=0.05)),
    "rmsprop": ("RMSprop", dict(lr=1e-3)),
    "adadelta": ("Adadelta", dict(lr=1.0)),
    "adam": ("Adam", dict(lr=1e-3)),
    "adafactor": ("Adafactor", dict(lr=1e-2)),
    # Muon for the weight matrices, AdamW (its defaults) for the biases, as
    # torch.optim.Muon's documentation recommends and `optdsl train` does.
    "muon": ("Muon", dict(lr=0.02)),
}

# The accuracies the issue quotes for PyTorch 2.15.
QUOTED = {
    "sgd": 0.931,
    "momentum": 0.941,
    "nesterov": 0.940,
    "adagrad": 0.934,
    "rmsprop": 0.933,
    "adadelta": 0.933,
    "adam": 0.931,
}


def load(name, raw=False):
    """Rows of a label then 256 values in [-1, 1]; inputs (x+1)/2 unless raw."""
    with gzip.open(os.path.join(DATA, name), "rt") as f:
        arr = np.loadtxt(f, dtype=np.float64)
    y = arr[:, 0].astype(np.int64)
    x = arr[:, 1:]
    if not raw:
        x = (x + 1.0) / 2.0
    return torch.from_numpy(x), torch.from_numpy(y)


def make_model(init, dtype):
    model = nn.Sequential(
        nn.Linear(256, 128),
        nn.Sigmoid(),
        nn.Linear(128, 64),
        nn.Sigmoid(),
        nn.Linear(64, 10),
    ).to(dtype)
    if init == "xavier":
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    elif init != "default":
        raise SystemExit(f"unknown init {init}; use default or xavier")
    return model


class Both:
    """Two optimizers stepped together (Muon's matrices, AdamW's vectors)."""

    def __init__(self, *opts):
        self.opts = opts

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad()

    def step(self):
        for o in self.opts:
            o.step()


def make_opt(label, params):
    cls, kw = SETTINGS[label]
    if cls == "Muon":
        params = list(params)
        matrices = [p for p in params if p.dim() == 2]
        vectors = [p for p in params if p.dim() != 2]
        return Both(torch.optim.Muon(matrices, **kw), torch.optim.AdamW(vectors))
    return getattr(torch.optim, cls)(params, **kw)


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def train_seed(label, init, seed, data, epochs, batch, dtype, drop_last):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = make_model(init, dtype)
    opt = make_opt(label, model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    n = len(ytr)
    for _ in range(epochs):
        perm = torch.randperm(n)
        stop = n - n % batch if drop_last else n
        for i in range(0, stop, batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
    return accuracy(model, xte, yte)


def seeds_mode(args):
    args.dtype = args.dtype or "f32"
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    xtr, ytr = load("usps.train.gz", args.raw)
    xte, yte = load("usps.test.gz", args.raw)
    data = (xtr.to(dtype), ytr, xte.to(dtype), yte)
    labels = args.opt.split(",")
    inits = args.init.split(",")
    print(
        f"torch {torch.__version__}, {args.dtype}, inputs "
        f"{'raw [-1,1]' if args.raw else '(x+1)/2'}, batch {args.batch}, "
        f"{args.epochs} epochs, seeds {args.seed0}..{args.seed0 + args.seeds - 1}, "
        f"drop_last={args.drop_last}",
        flush=True,
    )
    rows = []
    for init in inits:
        for label in labels:
            accs = []
            start = time.time()
            for s in range(args.seed0, args.seed0 + args.seeds):
                a = train_seed(
                    label, init, s, data, args.epochs, args.batch, dtype, args.drop_last
                )
                accs.append(a)
                print(f"  {init:8} {label:9} seed {s:3}: {a:.4f}", flush=True)
            a = np.array(accs)
            sd = a.std(ddof=1) if len(a) > 1 else 0.0
            rows.append((init, label, a.mean(), sd, a.min(), a.max(), len(a)))
            print(
                f"{init:8} {label:9} mean {a.mean():.4f} sd {sd:.4f} min {a.min():.4f} "
                f"max {a.max():.4f} ({len(a)} runs, {time.time() - start:.0f} s)",
                flush=True,
            )
    print("\n| init | optimizer | runs | mean | sd | min | max | quoted |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for init, label, mean, sd, lo, hi, runs in rows:
        print(
            f"| {init} | {label} | {runs} | {mean:.4f} | {sd:.4f} | {lo:.4f} | "
            f"{hi:.4f} | {QUOTED.get(label, float('nan')):.3f} |"
        )


def read_matrix(path, dtype):
    return torch.from_numpy(np.loadtxt(path, dtype=np.float64, ndmin=2)).to(dtype)


def replay_mode(args):
    """Trains from an export of optdsl (see examples/export_run.rs)."""
    d = args.replay
    meta = dict(
        line.split("=", 1) for line in open(os.path.join(d, "meta.txt")).read().split()
    )
    args.dtype = args.dtype or meta.get("dtype", "f64")
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    label = meta["label"]
    batch = int(meta["batch"])
    epochs = int(meta["epochs"])
    xtr, ytr = load("usps.train.gz")
    xte, yte = load("usps.test.gz")
    xtr, xte = xtr.to(dtype), xte.to(dtype)
    model = make_model("default", dtype)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for l, m in enumerate(linears):
            m.weight.copy_(read_matrix(os.path.join(d, f"w{l}.txt"), dtype))
            m.bias.copy_(read_matrix(os.path.join(d, f"b{l}.txt"), dtype).reshape(-1))
    opt = make_opt(label, model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    orders = np.loadtxt(os.path.join(d, "order.txt"), dtype=np.int64, ndmin=2)
    assert orders.shape == (epochs, len(ytr)), orders.shape
    ours = np.loadtxt(os.path.join(d, "history.txt"), ndmin=2)
    print(f"replay of {d}: {label} {SETTINGS[label]}, {args.dtype}, batch {batch}")
    print(
        "epoch | train loss PyTorch | train loss optdsl | diff | "
        "test acc PyTorch | test acc optdsl | test loss diff"
    )
    for e in range(epochs):
        perm = torch.from_numpy(orders[e])
        total = 0.0
        for i in range(0, len(ytr), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / len(ytr)
        with torch.no_grad():
            out = model(xte)
            test_loss = loss_fn(out, yte).item()
            acc = (out.argmax(1) == yte).double().mean().item()
        o_loss, o_acc, o_test_loss = ours[e, 1], ours[e, 2], ours[e, 3]
        print(
            f"{e + 1:5} | {train_loss:.15f} | {o_loss:.15f} | {train_loss - o_loss:+.2e} | "
            f"{acc:.4f} | {o_acc:.4f} | {test_loss - o_test_loss:+.2e}",
            flush=True,
        )
    with torch.no_grad():
        flat = torch.cat(
            [m.weight.reshape(-1) for m in linears] + [m.bias for m in linears]
        ).double().numpy()
    theirs = np.loadtxt(os.path.join(d, "params.txt"))
    scale = np.abs(theirs).max()
    print(
        f"final parameters: max |PyTorch - optdsl| = {np.abs(flat - theirs).max():.3e} "
        f"(largest |w| {scale:.3f})"
    )
    if args.dump_params:
        np.savetxt(args.dump_params, flat, fmt="%.17g")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--opt", default=",".join(SETTINGS), help="comma-separated labels")
    p.add_argument("--init", default="default,xavier", help="default and/or xavier")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--dtype",
        choices=["f32", "f64"],
        help="seeds: default f32; replay: default the export's (meta.txt)",
    )
    p.add_argument("--raw", action="store_true", help="keep inputs in [-1, 1]")
    p.add_argument("--drop-last", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--replay", help="a directory written by examples/export_run.rs")
    p.add_argument("--dump-params", help="replay: write the final parameters here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.replay:
        replay_mode(args)
    else:
        for label in args.opt.split(","):
            if label not in SETTINGS:
                sys.exit(f"unknown optimizer {label}; use {', '.join(SETTINGS)}")
        seeds_mode(args)


if __name__ == "__main__":
    main()
