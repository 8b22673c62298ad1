"""Times one step of torch.optim.Adam on 10^7 float32 parameters (fused,
foreach and the default single-tensor loop), the PyTorch side of the
comparison with `optdsl bench --optimizer adam`. Run:

    python3 tools/torch_adam_bench.py [--threads 2] [--n 10000000]

Prints `torch <variant> n=<n> threads=<t> ms=<median>` lines.
"""
import argparse
import statistics
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=10_000_000)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=21)
a = p.parse_args()
torch.set_num_threads(a.threads)
for variant in ["fused", "foreach", "default"]:
    w = torch.nn.Parameter(torch.full((a.n,), 0.5))
    w.grad = (torch.arange(a.n) % 97 - 48).float() * 1e-3
    kw = {"fused": True} if variant == "fused" else {"foreach": variant == "foreach"}
    opt = torch.optim.Adam([w], lr=1e-3, **kw)
    times = []
    for r in range(a.reps + 2):
        t = time.perf_counter()
        opt.step()
        dt = (time.perf_counter() - t) * 1e3
        if r >= 2:
            times.append(dt)
    print(f"torch {variant} n={a.n} threads={a.threads} ms={statistics.median(times):.3f}")
