"""Reference learning rates for every `optdsl train --schedule` form, from
PyTorch's schedulers (torch.optim.lr_scheduler) and optax's
piecewise_constant_schedule, written to tests/golden/schedules/.

    .venv/bin/python tools/torch_schedules.py   # torch.json
    .venv/bin/python tools/torch_schedules.py             # optax.json (a venv with optax, jax)

Whichever of torch and optax the interpreter has, it writes that library's
file. tests/golden/schedules/README.md gives the format and the versions the
fixtures were made with; tests/schedules.rs checks every value.

Each torch case runs SGD with two parameter groups (base rates 0.1 and 0.03,
as the trainer's weights and biases) and the scheduler the case names,
stepped as PyTorch's documentation steps it: once an epoch for the
epoch-wise schedulers (60 epochs), after every mini-batch for the per-step
ones (60 steps: 12 epochs of 5 steps). It records each group's `lr` in force
before each optimizer step, i.e. after k calls to `scheduler.step()`, and,
for the schedulers that have one, `_get_closed_form_lr()` at the same point
(PyTorch's own closed form; `step()` computes most of them recursively from
the previous rate, the "chainable" form). ReduceLROnPlateau is stepped with
a fixed metric sequence (stored in the case) that improves, plateaus and
improves again.
"""

import json
import os
import platform
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "schedules")
BASE_LRS = [0.1, 0.03]
STEPS_PER_EPOCH = 5
N = 60
# The schedulers whose step() computes the new rate from the group's current
# one (the chainable form); the others compute it from the base rates.
CHAINABLE = {"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "PolynomialLR",
             "SequentialLR"}


def loss_curve():
    """A training loss over 60 epochs: falls, plateaus (with small noise),
    falls, plateaus, falls."""
    m = []
    for e in range(N):
        if e < 8:
            v = 1.0 - 0.06 * e
        elif e < 20:
            v = 0.58 + 0.002 * ((e * 7) % 5)
        elif e < 26:
            v = 0.58 - 0.03 * (e - 19)
        elif e < 45:
            v = 0.40 + 0.001 * ((e * 3) % 4)
        else:
            v = 0.40 - 0.004 * (e - 44)
        m.append(v)
    return m


def torch_cases():
    import torch
    from torch.optim import lr_scheduler as S

    W = STEPS_PER_EPOCH  # one epoch of warm-up, in steps

    def seq(first, then, milestone):
        return lambda o: S.SequentialLR(o, [first(o), then(o)], milestones=[milestone])

    # (our schedule, unit, PyTorch's scheduler as text, constructor, base lrs, metrics)
    loss = loss_curve()
    accuracy = [1.0 - v for v in loss]
    cases = [
        ("constant", "epoch", "LambdaLR(lambda e: 1.0)", lambda o: S.LambdaLR(o, lambda e: 1.0)),
        ("1/t", "epoch", "LambdaLR(lambda e: 1 / (1 + e))", lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e))),
        ("1/t:0.1", "epoch", "LambdaLR(lambda e: 1 / (1 + 0.1 * e))",
         lambda o: S.LambdaLR(o, lambda e: 1 / (1 + 0.1 * e))),
        ("1/t:step:0.05", "step", "LambdaLR(lambda s: 1 / (1 + 0.05 * s))",
         lambda o: S.LambdaLR(o, lambda e: 1 / (1 + 0.05 * e))),
        ("step:3:0.5", "epoch", "StepLR(step_size=3, gamma=0.5)", lambda o: S.StepLR(o, 3, 0.5)),
        ("step:7:0.1", "epoch", "StepLR(step_size=7, gamma=0.1)", lambda o: S.StepLR(o, 7, 0.1)),
        ("multistep:5,12,30:0.5", "epoch", "MultiStepLR(milestones=[5, 12, 30], gamma=0.5)",
         lambda o: S.MultiStepLR(o, [5, 12, 30], 0.5)),
        ("multistep:10,20,45:0.1", "epoch", "MultiStepLR(milestones=[10, 20, 45], gamma=0.1)",
         lambda o: S.MultiStepLR(o, [10, 20, 45], 0.1)),
        ("exp:0.9", "epoch", "ExponentialLR(gamma=0.9)", lambda o: S.ExponentialLR(o, 0.9)),
        ("exp:0.95", "epoch", "ExponentialLR(gamma=0.95)", lambda o: S.ExponentialLR(o, 0.95)),
        ("cosine", "step", "CosineAnnealingLR(T_max=60)", lambda o: S.CosineAnnealingLR(o, N)),
        ("cosine:0.001", "step", "CosineAnnealingLR(T_max=60, eta_min=0.001)",
         lambda o: S.CosineAnnealingLR(o, N, eta_min=0.001)),
        ("linear:0.25:1:8", "epoch", "LinearLR(start_factor=0.25, end_factor=1.0, total_iters=8)",
         lambda o: S.LinearLR(o, 0.25, 1.0, 8)),
        ("linear:1:0.1:30", "epoch", "LinearLR(start_factor=1.0, end_factor=0.1, total_iters=30)",
         lambda o: S.LinearLR(o, 1.0, 0.1, 30)),
        ("linear:0.5:0:10", "epoch", "LinearLR(start_factor=0.5, end_factor=0.0, total_iters=10)",
         lambda o: S.LinearLR(o, 0.5, 0.0, 10)),
        ("poly:40:2", "epoch", "PolynomialLR(total_iters=40, power=2.0)", lambda o: S.PolynomialLR(o, 40, 2.0)),
        ("poly:30:1", "epoch", "PolynomialLR(total_iters=30, power=1.0)", lambda o: S.PolynomialLR(o, 30, 1.0)),
        ("poly:50:0.5", "epoch", "PolynomialLR(total_iters=50, power=0.5)", lambda o: S.PolynomialLR(o, 50, 0.5)),
        ("onecycle", "step", "OneCycleLR(max_lr=base, total_steps=60, cycle_momentum=False)",
         lambda o: S.OneCycleLR(o, BASE_LRS, total_steps=N, cycle_momentum=False)),
        ("onecycle:pct_start=0.25:anneal_strategy=linear", "step",
         "OneCycleLR(max_lr=base, total_steps=60, pct_start=0.25, anneal_strategy='linear', cycle_momentum=False)",
         lambda o: S.OneCycleLR(o, BASE_LRS, total_steps=N, pct_start=0.25, anneal_strategy="linear",
                                cycle_momentum=False)),
        ("onecycle:div_factor=10:final_div_factor=100:three_phase=true", "step",
         "OneCycleLR(max_lr=base, total_steps=60, div_factor=10, final_div_factor=100, three_phase=True, cycle_momentum=False)",
         lambda o: S.OneCycleLR(o, BASE_LRS, total_steps=N, div_factor=10.0, final_div_factor=100.0,
                                three_phase=True, cycle_momentum=False)),
        ("onecycle:pct_start=0.4:anneal_strategy=linear:three_phase=true", "step",
         "OneCycleLR(max_lr=base, total_steps=60, pct_start=0.4, anneal_strategy='linear', three_phase=True, cycle_momentum=False)",
         lambda o: S.OneCycleLR(o, BASE_LRS, total_steps=N, pct_start=0.4, anneal_strategy="linear",
                                three_phase=True, cycle_momentum=False)),
        ("cyclic:0.01:10", "step", "CyclicLR(base_lr=0.01, max_lr=base, step_size_up=10, cycle_momentum=False)",
         lambda o: S.CyclicLR(o, 0.01, BASE_LRS, step_size_up=10, cycle_momentum=False)),
        ("cyclic:0.001:7:step_size_down=13:mode=triangular2", "step",
         "CyclicLR(base_lr=0.001, max_lr=base, step_size_up=7, step_size_down=13, mode='triangular2', cycle_momentum=False)",
         lambda o: S.CyclicLR(o, 0.001, BASE_LRS, step_size_up=7, step_size_down=13, mode="triangular2",
                              cycle_momentum=False)),
        ("cyclic:0.002:5:mode=exp_range:gamma=0.97", "step",
         "CyclicLR(base_lr=0.002, max_lr=base, step_size_up=5, mode='exp_range', gamma=0.97, cycle_momentum=False)",
         lambda o: S.CyclicLR(o, 0.002, BASE_LRS, step_size_up=5, mode="exp_range", gamma=0.97,
                              cycle_momentum=False)),
        ("sgdr:10", "epoch", "CosineAnnealingWarmRestarts(T_0=10)", lambda o: S.CosineAnnealingWarmRestarts(o, 10)),
        ("sgdr:5:2:0.001", "epoch", "CosineAnnealingWarmRestarts(T_0=5, T_mult=2, eta_min=0.001)",
         lambda o: S.CosineAnnealingWarmRestarts(o, 5, 2, 0.001)),
        ("sgdr:3:3", "epoch", "CosineAnnealingWarmRestarts(T_0=3, T_mult=3)",
         lambda o: S.CosineAnnealingWarmRestarts(o, 3, 3)),
        ("warmup:1", "step", "LinearLR(start_factor=1/5, total_iters=4)",
         lambda o: S.LinearLR(o, 1 / W, 1.0, W - 1)),
        ("warmup:2+cosine", "step",
         "SequentialLR([LinearLR(start_factor=1/10, total_iters=9), CosineAnnealingLR(T_max=50)], milestones=[10])",
         seq(lambda o: S.LinearLR(o, 1 / (2 * W), 1.0, 2 * W - 1), lambda o: S.CosineAnnealingLR(o, N - 2 * W),
             2 * W)),
        ("warmup:0.5+exp:0.9", "step",
         "SequentialLR([LinearLR(start_factor=1/3, total_iters=2), StepLR(step_size=5, gamma=0.9)], milestones=[3])",
         seq(lambda o: S.LinearLR(o, 1 / 3, 1.0, 2), lambda o: S.StepLR(o, W, 0.9), 3)),
        ("warmup:1+step:2:0.5", "step",
         "SequentialLR([LinearLR(start_factor=1/5, total_iters=4), StepLR(step_size=10, gamma=0.5)], milestones=[5])",
         seq(lambda o: S.LinearLR(o, 1 / W, 1.0, W - 1), lambda o: S.StepLR(o, 2 * W, 0.5), W)),
    ]
    cases = [(s, u, t, m, BASE_LRS, None) for s, u, t, m in cases]
    cases += [
        ("plateau:factor=0.5:patience=3", "epoch", "ReduceLROnPlateau(factor=0.5, patience=3)",
         lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=3), BASE_LRS, loss),
        ("plateau", "epoch", "ReduceLROnPlateau()", lambda o: S.ReduceLROnPlateau(o), BASE_LRS, loss),
        ("plateau:factor=0.3:patience=1:threshold=0.01:threshold_mode=abs:cooldown=2:min_lr=0.01", "epoch",
         "ReduceLROnPlateau(factor=0.3, patience=1, threshold=0.01, threshold_mode='abs', cooldown=2, min_lr=0.01)",
         lambda o: S.ReduceLROnPlateau(o, factor=0.3, patience=1, threshold=0.01, threshold_mode="abs",
                                       cooldown=2, min_lr=0.01), BASE_LRS, loss),
        ("plateau:mode=max:factor=0.5:patience=2", "epoch", "ReduceLROnPlateau(mode='max', factor=0.5, patience=2)",
         lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2), BASE_LRS, accuracy),
        ("plateau:factor=0.5:patience=0", "epoch", "ReduceLROnPlateau(factor=0.5, patience=0) on rates near eps",
         lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=0), [1e-7, 3e-8], loss),
    ]
    out = []
    for schedule, unit, text, make, base_lrs, metrics in cases:
        params = [torch.nn.Parameter(torch.zeros(1)) for _ in base_lrs]
        opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs)], lr=base_lrs[0],
                              momentum=0.9)
        sched = make(opt)
        closed_form = hasattr(sched, "_get_closed_form_lr")
        lrs = [[] for _ in base_lrs]
        closed = [[] for _ in base_lrs]
        for k in range(N):
            for g, group in enumerate(opt.param_groups):
                lrs[g].append(float(group["lr"]))
            if closed_form:
                assert sched.last_epoch == k
                for g, lr in enumerate(sched._get_closed_form_lr()):
                    closed[g].append(float(lr))
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[k])
        out.append({
            "schedule": schedule,
            "torch": text,
            "chainable": type(sched).__name__ in CHAINABLE,
            "unit": unit,
            "steps_per_epoch": STEPS_PER_EPOCH,
            "epochs": N if unit == "epoch" else N // STEPS_PER_EPOCH,
            "base_lrs": base_lrs,
            "metrics": metrics,
            "lr": lrs,
            "closed_form": closed if closed_form else None,
        })
    return {
        "source": "torch.optim.lr_scheduler",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cases": out,
    }


def optax_cases():
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    cases = []
    for init, boundaries in [(0.1, {5: 0.5, 12: 0.1, 30: 2.0}), (0.03, {0: 0.5, 1: 0.5, 59: 0.0}),
                             (1.0, {7: 0.3, 20: 0.3, 21: 0.3})]:
        fn = optax.piecewise_constant_schedule(init, boundaries)
        text = "piecewise:" + ",".join(f"{b}={s}" for b, s in sorted(boundaries.items()))
        cases.append({
            "schedule": text,
            "optax": f"piecewise_constant_schedule({init}, {boundaries})",
            "unit": "step",
            "base_lr": init,
            "lr": [float(fn(k)) for k in range(N)],
        })
    return {
        "source": "optax.piecewise_constant_schedule (jax_enable_x64)",
        "optax": optax.__version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cases": cases,
    }


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(data['cases'])} cases")


def main():
    warnings.simplefilter("ignore")
    wrote = False
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        write("torch.json", torch_cases())
        wrote = True
    try:
        import optax  # noqa: F401
    except ImportError:
        pass
    else:
        write("optax.json", optax_cases())
        wrote = True
    if not wrote:
        sys.exit("neither torch nor optax is installed in this interpreter; see the module docstring")


if __name__ == "__main__":
    main()
