"""Paired runs: optdsl's rules with shapes against torch.optim on one matrix
(issue 13): Muon with its Newton-Schulz iteration in f32 (torch's bfloat16
cast patched out, so both sides run the same f32 products) and with torch's
own bfloat16 iteration, and Adafactor, on a `--shape` f32 parameter.

    .venv/bin/python tools/torch_matrix_bench.py --optdsl target/release/optdsl

For each rule, `--pairs` times: `optdsl bench --optimizer RULE --shape RxC
--threads T --reps R` (its line: ours_ms, gemm_ms = the same matrix
products done by the GEMM alone, bound_ms = the same-traffic bound: the passes
over whole arrays the tensor executor makes, replayed as streaming loops; see
docs/matrices.md), then
this script's torch worker in a process of its own (torch.set_num_threads(T),
2 warm-up steps, R timed steps, the median), in alternating order. Prints
every pair, then the medians of the pairs and how many pairs each side won.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time


def worker(rule, shape, threads, reps, bf16):
    import torch
    import torch.optim._muon as muon

    torch.set_num_threads(threads)
    if rule == "muon" and not bf16:
        # torch's own iteration without its one cast to bfloat16.
        def f32_iteration(grad, ns_coefficients, ns_steps, eps):
            a, b, c = ns_coefficients
            x = grad
            if grad.size(0) > grad.size(1):
                x = x.T
            x = x.div(x.norm().clamp(min=eps))
            for _ in range(ns_steps):
                gram = x @ x.T
                update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
                x = torch.addmm(x, update, x, beta=a)
            if grad.size(0) > grad.size(1):
                x = x.T
            return x

        muon._zeropower_via_newtonschulz = f32_iteration
    rows, cols = shape
    n = rows * cols
    idx = torch.arange(n, dtype=torch.float64)
    fill = lambda seed: ((((idx * 7919 + seed) % 2001) / 1000 - 1) * 1e-2).float().reshape(rows, cols)
    w = torch.nn.Parameter(fill(1))
    w.grad = fill(2)
    opt = torch.optim.Muon([w]) if rule == "muon" else torch.optim.Adafactor([w])
    times = []
    for k in range(reps + 2):
        start = time.perf_counter()
        opt.step()
        if k >= 2:
            times.append((time.perf_counter() - start) * 1e3)
    print(f"torch_ms={statistics.median(times):.3f}")


def ours(args, rule):
    out = subprocess.run(
        [args.optdsl, "bench", "--optimizer", rule, "--shape", args.shape,
         "--threads", str(args.threads), "--reps", str(args.reps)],
        capture_output=True, text=True, check=True,
    ).stdout
    line = [l for l in out.splitlines() if l.startswith(rule + " ")][-1]
    get = lambda key: float(re.search(key + r"=([0-9.]+)", line).group(1)) if key + "=" in line else None
    return get("ours_ms"), get("gemm_ms"), get("bound_ms")


def theirs(args, rule, bf16):
    cmd = [sys.executable, __file__, "--worker", rule, "--shape", args.shape,
           "--threads", str(args.threads), "--reps", str(args.reps)]
    if bf16:
        cmd.append("--bf16")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"torch_ms=([0-9.]+)", out).group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--optdsl", default="target/release/optdsl")
    p.add_argument("--shape", default="1024x4096")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--rules", default="muon,adafactor")
    p.add_argument("--worker")
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    shape = tuple(int(d) for d in args.shape.split("x"))
    if args.worker:
        worker(args.worker, shape, args.threads, args.reps, args.bf16)
        return
    for rule in args.rules.split(","):
        sides = [("torch", False)] + ([("torch-bf16", True)] if rule == "muon" else [])
        rows = []
        for k in range(args.pairs):
            order = [0, 1] if k % 2 == 0 else [1, 0]
            got = {}
            for which in order:
                if which == 0:
                    got["ours"] = ours(args, rule)
                else:
                    got["torch"] = {name: theirs(args, rule, bf16) for name, bf16 in sides}
            o, gemm, bound = got["ours"]
            load = open("/proc/loadavg").read().split()[0]
            extra = f" gemm_ms={gemm:.1f} ours/gemm={o / gemm:.2f}" if gemm else ""
            print(f"{rule} pair {k + 1}: optdsl {o:.1f} ms (bound {bound:.1f}, ours/bound={o / bound:.2f}{extra}) "
                  + " ".join(f"{n} {t:.1f} ms" for n, t in got["torch"].items()) + f" load {load}", flush=True)
            rows.append((o, gemm, bound, got["torch"]))
        med = lambda xs: statistics.median(xs)
        o = med([r[0] for r in rows])
        line = f"{rule} median: optdsl {o:.1f} ms, ours/bound {med([r[0] / r[2] for r in rows]):.2f}"
        if rows[0][1]:
            line += f", ours/gemm {med([r[0] / r[1] for r in rows]):.2f}"
        for name, _ in sides:
            t = med([r[3][name] for r in rows])
            wins = sum(r[0] < r[3][name] for r in rows)
            line += f"; {name} {t:.1f} ms ({t / o:.2f}x ours; optdsl won {wins}/{len(rows)})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
