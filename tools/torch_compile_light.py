"""Paired runs: optdsl's fused step against `torch.compile` (Inductor's C++
loop) of the same light rule (sgd, signsgd, momentum, lion), issue 11.

Run (torch in a venv of its own, CPU is enough):

    .venv/bin/python tools/torch_compile_light.py --optdsl target/release/optdsl

For each rule, `--pairs` times, it runs `optdsl bench --optimizer RULE --n N
--threads T --reps R --naive-reps 0` and, in a process of its own, this
script's torch worker on the same rule, the two in alternating order (pair 1
optdsl first, pair 2 torch first, ...), and prints both medians per pair, then
the median of the pairs' medians and how many pairs each side won. Each pair
line also has the torch side's fastest step and the 1-minute load average:
on a busy machine Inductor's OpenMP loop (each thread a fixed half, then a
barrier) waits a whole scheduler slice (about 4 ms) whenever one of its
threads is descheduled, so its medians jump to multiples of 4 ms; compare the
rules on a quiet machine, and `--threads 1` compares the loops without that.

The torch side takes the rule's hyperparameters from `optdsl list` (the
defaults of optdsl's built-in, so both sides compute the same rule) and writes
the rule as a plain function that updates its tensors in place
(`w.sub_(..)`, `v.mul_(..).add_(..)`), compiled with
`torch.compile(fn, fullgraph=True)`. Its tensors are filled as optdsl's bench
fills its own (w and g from `((i*7919 + seed) % 2001 / 1000 - 1) * 1e-2`,
state 0). The first call goes through `run_and_get_code`, which also gives the
code Inductor generated: the worker prints how many C++ kernels and loops
over the elements it has and any call outside them (`kernels=1 loops=1
other_calls=0` is one fused loop), and checks the compiled step against the
same function run eagerly. Then 2 warm-up steps and `--reps` timed steps (time.perf_counter
around each call), the median in ms. Between steps a 64 MiB buffer is written
outside the timer, as optdsl's bench runs its STREAM passes between its steps,
so neither side starts a step with its arrays in the last-level cache
(`--no-flush` turns this off on the torch side).

`--context` also times, once per rule after the pairs, the same function run
eagerly and, for sgd and momentum, `torch.optim.SGD` (single-tensor,
foreach and fused): not part of the comparison, only to place it.

`--dump-code DIR` writes the code Inductor generated for each rule there.
"""
import argparse
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time

LIGHT = ["sgd", "signsgd", "momentum", "lion"]


# ---------------------------------------------------------------- the rules
# Each mirrors optdsl's built-in of the same name (optdsl-runtime/src/builtin/
# course.rs and optax.rs), with the hyperparameters as Python constants (what
# torch.compile specializes on) and the hyperparameter branches taken in
# Python, as torch.optim's own code takes them.


HYPERS = {
    "sgd": {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"},
    "signsgd": {"lr", "weight_decay", "maximize"},
    "momentum": {"lr", "momentum", "weight_decay"},
    "lion": {"lr", "beta1", "beta2", "weight_decay", "maximize"},
}


def make_rule(name, h):
    """(step function, names of the state tensors) for a rule and its hypers."""
    if name in HYPERS and set(h) != HYPERS[name]:
        raise SystemExit(f"{name}: optdsl's hyperparameters {sorted(h)} are not the ones "
                         f"the torch side implements {sorted(HYPERS[name])}")
    if name == "sgd":
        # torch.optim.SGD (_single_tensor_sgd): d = ±g + wd w; b = mu b + (1-tau) d;
        # d = d + mu b (Nesterov) or b; w -= lr d. Steady state (t > 1).
        lr, mu, tau = h["lr"], h["momentum"], h["dampening"]
        wd, nesterov, maximize = h["weight_decay"], h["nesterov"], h["maximize"]

        def sgd(w, g, *buf):  # buf: the momentum buffer, only when momentum != 0
            d = -g if maximize else g
            if wd != 0:
                d = d + wd * w
            if mu != 0:
                buf[0].mul_(mu).add_(d, alpha=1 - tau)
                d = d + mu * buf[0] if nesterov else buf[0]
            w.sub_(lr * d)

        return sgd, ["momentum_buffer"] if mu != 0 else []
    if name == "signsgd":
        # w -= lr sign(±g + wd w)
        lr, wd, maximize = h["lr"], h["weight_decay"], h["maximize"]

        def signsgd(w, g):
            d = -g if maximize else g
            if wd != 0:
                d = d + wd * w
            w.sub_(lr * torch.sign(d))

        return signsgd, []
    if name == "momentum":
        # the course's heavy ball: v = mu v - lr (g + wd w); w += v
        lr, mu, wd = h["lr"], h["momentum"], h["weight_decay"]

        def momentum(w, g, v):
            d = g + wd * w if wd != 0 else g
            v.mul_(mu).sub_(lr * d)
            w.add_(v)

        return momentum, ["v"]
    if name == "lion":
        # optax.lion: u = sign((1-b1) d + b1 m); m = (1-b2) d + b2 m; w -= lr (u + wd w)
        lr, b1, b2 = h["lr"], h["beta1"], h["beta2"]
        wd, maximize = h["weight_decay"], h["maximize"]

        def lion(w, g, mu):
            d = -g if maximize else g
            u = torch.sign((1 - b1) * d + b1 * mu)
            mu.mul_(b2).add_((1 - b2) * d)
            w.sub_(lr * (u + wd * w))

        return lion, ["mu"]
    raise SystemExit(f"no torch rule for {name!r} (light rules: {', '.join(LIGHT)})")


def optdsl_list_line(optdsl, name):
    out = subprocess.run([optdsl, "list"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.split()[:1] == [name]:
            return line
    raise SystemExit(f"`{optdsl} list` has no rule {name!r}")


def parse_hypers(line):
    """The `key=value` words of an `optdsl list` line (a range such as
    `lr=0.001[0<=lr]` after the default is dropped)."""
    hypers = {}
    for word in line.split()[2:]:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=([^\[\]=]+)(\[.*\])?", word)
        if not m:
            continue
        k, v = m.group(1), m.group(2)
        if v in ("true", "false"):
            hypers[k] = v == "true"
        else:
            hypers[k] = float(v)
    return hypers


# ---------------------------------------------------------------- the worker


def fill(n, seed):
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 7919 + seed) % 2001).double() / 1000.0 - 1.0).mul(1e-2).float()


def inductor_summary(code):
    """Kernels, element loops and calls other than kernels in Inductor's code."""
    kernels = code.count("async_compile.cpp_pybinding(") + code.count("async_compile.cpp(")
    # outermost loops over the elements (x0), with or without `#pragma omp for`
    # (Inductor writes no OpenMP for one thread)
    loops = len(re.findall(r"for\s*\(\s*int64_t x0\s*=", code))
    # the wrapper's `call`: every line that calls something other than a kernel
    call = code[code.find("def call(self, args)"):].split("\nrunner =")[0]
    other = [
        ln.strip()
        for ln in call.splitlines()
        if "(" in ln
        and not ln.strip().startswith(("def ", "assert_size_stride", "cpp_fused", "return", "#"))
        and "args.clear()" not in ln
    ]
    return kernels, loops, other


def timed(fn, args, reps, flush):
    times = []
    for r in range(reps + 2):
        if flush is not None:
            flush.add_(1.0)
        t = time.perf_counter()
        fn(*args)
        dt = (time.perf_counter() - t) * 1e3
        if r >= 2:
            times.append(dt)
    return statistics.median(times), min(times)


def worker(a):
    from torch._inductor.utils import run_and_get_code

    torch.set_num_threads(a.threads)
    hypers = json.loads(a.hypers)
    fn, state_names = make_rule(a.worker, hypers)
    n = a.n
    w, g = fill(n, 1), fill(n, 2)
    state = [torch.zeros(n) for _ in state_names]
    flush = None if a.no_flush else torch.zeros(16 * 1024 * 1024)

    compiled = torch.compile(fn, fullgraph=True)
    # one step eagerly on copies, the same step compiled: they must agree
    ref = [w.clone(), g] + [s.clone() for s in state]
    fn(*ref)
    t = time.perf_counter()
    _, codes = run_and_get_code(compiled, w, g, *state)
    compile_s = time.perf_counter() - t
    got = [w, g] + state
    worst = max((x - y).abs().max().item() for x, y in zip(got, ref))
    kernels, loops, other = inductor_summary("\n".join(codes))
    if a.dump_code:
        os.makedirs(a.dump_code, exist_ok=True)
        with open(os.path.join(a.dump_code, f"{a.worker}.py"), "w") as f:
            f.write("\n\n".join(codes))
    del ref

    ms, best = timed(compiled, [w, g] + state, a.reps, flush)
    print(
        f"torch.compile {a.worker} n={n} threads={torch.get_num_threads()} "
        f"ms={ms:.3f} min_ms={best:.3f} "
        f"kernels={kernels} loops={loops} other_calls={len(other)} "
        f"max_diff_vs_eager={worst:.3g} compile_s={compile_s:.1f}"
    )
    for ln in other:
        print(f"  other call: {ln}")

    if a.context:
        ms, best = timed(fn, [w, g] + state, a.reps, flush)
        print(f"eager-function {a.worker} n={n} threads={torch.get_num_threads()} ms={ms:.3f} "
              f"min_ms={best:.3f}")
        if a.worker in ("sgd", "momentum"):
            lr = hypers["lr"]
            mu = hypers["momentum"]
            wd = hypers.get("weight_decay", 0.0)
            for variant, kw in [
                ("single-tensor", {"foreach": False}),
                ("foreach", {"foreach": True}),
                ("fused", {"fused": True}),
            ]:
                p = torch.nn.Parameter(fill(n, 1))
                p.grad = fill(n, 2)
                try:
                    opt = torch.optim.SGD([p], lr=lr, momentum=mu, weight_decay=wd, **kw)
                except (RuntimeError, ValueError) as e:
                    print(f"torch.optim.SGD {variant}: {e}")
                    continue
                ms, best = timed(opt.step, [], a.reps, flush)
                print(
                    f"torch.optim.SGD({variant}, lr={lr:g}, momentum={mu:g}) "
                    f"n={n} threads={torch.get_num_threads()} ms={ms:.3f} min_ms={best:.3f}"
                )


# ---------------------------------------------------------------- the pairs


def run_optdsl(a, rule):
    cmd = [a.optdsl, "bench", "--optimizer", rule, "--n", str(a.n), "--threads",
           str(a.threads), "--reps", str(a.reps), "--naive-reps", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if " ours_ms=" in ln][-1]
    fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
    return float(fields["ours_ms"]), line


def run_torch(a, rule, hypers, extra=()):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", rule, "--hypers",
           json.dumps(hypers), "--n", str(a.n), "--threads", str(a.threads),
           "--reps", str(a.reps), *extra]
    if a.no_flush:
        cmd.append("--no-flush")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"torch worker for {rule} failed")
    lines = out.stdout.splitlines()
    line = [ln for ln in lines if ln.startswith("torch.compile ")][0]
    fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
    return float(fields["ms"]), line, lines, float(fields["min_ms"])


def main(a):
    rules = [r.strip() for r in a.rules.split(",") if r.strip()]
    bin_stat = os.stat(a.optdsl)
    print(f"# torch {torch.__version__}, optdsl {os.path.abspath(a.optdsl)} "
          f"(modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(bin_stat.st_mtime))})")
    print(f"# n={a.n} f32 threads={a.threads} reps={a.reps} pairs={a.pairs} "
          f"flush={'off' if a.no_flush else 'on'}; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = []
    for rule in rules:
        line = optdsl_list_line(a.optdsl, rule)
        hypers = parse_hypers(line)
        fn, _ = make_rule(rule, hypers)
        print(f"\n## {rule}")
        print(f"optdsl list: {' '.join(line.split())}")
        print("torch side:")
        print(textwrap.indent(textwrap.dedent(inspect.getsource(fn)).rstrip(), "    "))
        print(f"    with {hypers}")
        ours, theirs = [], []
        for p in range(a.pairs):
            order = ["optdsl", "torch"] if p % 2 == 0 else ["torch", "optdsl"]
            for side in order:
                if side == "optdsl":
                    o, _ = run_optdsl(a, rule)
                else:
                    extra = ["--dump-code", a.dump_code] if a.dump_code and p == 0 else []
                    t, tline, _, tmin = run_torch(a, rule, hypers, extra)
                    if p == 0:
                        print("  " + tline)
            ours.append(o)
            theirs.append(t)
            win = "optdsl" if o < t else "torch.compile" if t < o else "tie"
            print(f"  pair {p + 1} ({order[0]} first): optdsl {o:7.3f} ms   "
                  f"torch.compile {t:7.3f} ms (min {tmin:6.3f})   ratio {o / t:.3f}   "
                  f"{win:13s} load {os.getloadavg()[0]:.2f}")
        mo, mt = statistics.median(ours), statistics.median(theirs)
        wo = sum(o < t for o, t in zip(ours, theirs))
        wt = sum(t < o for o, t in zip(ours, theirs))
        print(f"  median of pairs: optdsl {mo:.3f} ms, torch.compile {mt:.3f} ms "
              f"(ratio {mo / mt:.3f}); pairs won: optdsl {wo}, torch.compile {wt}")
        summary.append((rule, mo, mt, wo, wt))
        if a.context:
            _, _, lines, _ = run_torch(a, rule, hypers, ["--context"])
            for ln in lines:
                if not ln.startswith("torch.compile "):
                    print("  context: " + ln)
    print(f"\n# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n| rule | optdsl ms | torch.compile ms | optdsl/torch | pairs won (optdsl : torch) |")
    print("|---|---|---|---|---|")
    for rule, mo, mt, wo, wt in summary:
        print(f"| {rule} | {mo:.3f} | {mt:.3f} | {mo / mt:.3f} | {wo} : {wt} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optdsl", default="target/release/optdsl", help="the optdsl binary")
    ap.add_argument("--rules", default=",".join(LIGHT), help="comma-separated light rules")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21, help="timed steps per process")
    ap.add_argument("--no-flush", action="store_true",
                    help="torch side: no cache-clearing write between steps")
    ap.add_argument("--context", action="store_true",
                    help="also time eager torch (the function, torch.optim.SGD) once per rule")
    ap.add_argument("--dump-code", metavar="DIR", help="write Inductor's code per rule here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--hypers", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch  # noqa: E402  (after OMP_NUM_THREADS)

    if args.worker:
        worker(args)
    else:
        main(args)
