"""Reference trajectories for eight optax optimizers that optdsl does not ship
as built-ins (yogi, novograd, signum, adan, amsgrad,
optimistic_gradient_descent, fromage, lars), written to tests/golden/zoo/.

Same objective, start and format as tests/golden/extra/generate.py (60 steps
on the 12-dimensional test objective, tests/golden/README.md's JSON). Each run
calls the optax function named in the fixture's `optimizer` with the
fixture's `hyper` as keyword arguments, so `hyper` uses optax's own argument
names; arguments not given take optax's defaults.

    python3 -m venv .venv
    .venv/bin/pip install optax==0.2.8 jax jaxlib numpy
    .venv/bin/python tools/zoo_fixtures.py     # writes tests/golden/zoo/*.json

Measured with optax 0.2.8, jax/jaxlib 0.10.2, numpy 2.4.6, Python 3.11 (CPU).
f64 fixtures run with jax_enable_x64; f32 fixtures without it, so every array
and every per-step scalar optax computes is float32.
"""

import inspect
import json
import os
import re

import numpy as np

STEPS = 60
DIM = 12
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "zoo")
CURV = np.logspace(-1.5, 1.5, 7)


def gradient(w, k, rng):
    """The objective's gradient at w (float64) on step k (0-based), as in
    tests/golden/extra/generate.py."""
    g = np.zeros(DIM)
    x, y = w[0], w[1]
    g[0] = -2 * (1 - x) - 400 * x * (y - x * x)
    g[1] = 200 * (y - x * x)
    g[2:9] = CURV * w[2:9] + 0.1 * rng.standard_normal(7)
    g[9] = (w[9] - 0.5) if k % 4 == 0 else 0.0
    g[10] = 0.0
    g[11] = 0.0 if rng.random() < 0.2 else 2.0 * w[11] + 0.05 * rng.standard_normal()
    return g


def params0(seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.5, 1.5, DIM)
    w[0], w[1] = -0.8, 1.2
    return w


def run_optax(name, hyper, dtype, seed):
    import jax

    jax.config.update("jax_enable_x64", dtype == "f64")
    import jax.numpy as jnp
    import optax

    npdt = np.float32 if dtype == "f32" else np.float64
    opt = getattr(optax, name)(**hyper)
    w = jnp.asarray(params0(seed).astype(npdt))
    assert w.dtype == npdt, (name, w.dtype)
    state = opt.init(w)
    rng = np.random.default_rng(seed + 1000)
    start = [float(x) for x in np.asarray(w)]
    grads, params = [], []
    for k in range(STEPS):
        g = gradient(np.asarray(w).astype(np.float64), k, rng).astype(npdt)
        updates, state = opt.update(jnp.asarray(g), state, w)
        w = optax.apply_updates(w, updates)
        assert w.dtype == npdt, (name, w.dtype)
        grads.append([float(x) for x in g])
        params.append([float(x) for x in np.asarray(w)])
    source = (f"optax {optax.__version__} optax.{name} "
              f"(jax {jax.__version__} {'x64' if dtype == 'f64' else 'f32'})")
    return start, grads, params, source


# (fixture name, optax function, hyper in optax's argument names, dtype)
CASES = [
    ("yogi", "yogi", {"learning_rate": 0.02, "b1": 0.8, "b2": 0.99, "eps": 1e-4}, "f64"),
    ("yogi-f32", "yogi", {"learning_rate": 0.01}, "f32"),
    ("novograd", "novograd", {"learning_rate": 0.01, "b1": 0.85, "b2": 0.5, "eps": 1e-7,
                              "eps_root": 0.01, "weight_decay": 0.01}, "f64"),
    ("novograd-f32", "novograd", {"learning_rate": 0.005}, "f32"),
    ("signum", "signum", {"learning_rate": 0.003, "beta": 0.8}, "f64"),
    ("signum-f32", "signum", {"learning_rate": 0.002}, "f32"),
    ("adan", "adan", {"learning_rate": 0.01, "b1": 0.9, "b2": 0.9, "b3": 0.995, "eps": 1e-7,
                      "eps_root": 1e-10, "weight_decay": 0.02}, "f64"),
    ("adan-f32", "adan", {"learning_rate": 0.01, "weight_decay": 0.01}, "f32"),
    ("amsgrad", "amsgrad", {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-6,
                            "eps_root": 1e-6}, "f64"),
    ("amsgrad-raw-mu", "amsgrad", {"learning_rate": 0.005, "bias_correction_mu": False}, "f64"),
    ("amsgrad-raw-nu-f32", "amsgrad", {"learning_rate": 0.005, "bias_correction_nu": False}, "f32"),
    ("optimistic-gradient-descent", "optimistic_gradient_descent",
     {"learning_rate": 0.0005, "alpha": 0.7, "beta": 1.5}, "f64"),
    ("optimistic-gradient-descent-f32", "optimistic_gradient_descent",
     {"learning_rate": 0.0004}, "f32"),
    ("fromage", "fromage", {"learning_rate": 0.05, "min_norm": 2.5}, "f64"),
    ("fromage-f32", "fromage", {"learning_rate": 0.02, "min_norm": 40.0}, "f32"),
    ("lars", "lars", {"learning_rate": 0.5, "weight_decay": 0.01, "trust_coefficient": 0.01,
                      "eps": 1e-8, "momentum": 0.8, "nesterov": True}, "f64"),
    ("lars-no-masks", "lars", {"learning_rate": 0.001, "weight_decay": 0.01,
                               "weight_decay_mask": False, "trust_ratio_mask": False,
                               "momentum": 0.5}, "f64"),
    ("lars-f32", "lars", {"learning_rate": 2.0}, "f32"),
]


# optax arguments the rules in zoo.opt do not take: dtypes and a pytree mask,
# not numbers or booleans.
NOT_HYPERS = {
    "signum": {"accumulator_dtype"},
    "amsgrad": {"mu_dtype"},
    "adan": {"mask"},
}


def normalized(name):
    return name.replace("_", "").replace("-", "").lower()


def check_rules():
    """zoo.opt's `hyper` declarations against the optax functions' signatures:
    every name an argument of the function, every default optax's (optax has
    no default learning rate), every other argument listed in NOT_HYPERS."""
    import optax

    text = open(os.path.join(OUT, "zoo.opt")).read()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    rules = re.findall(r"pub\s+(\w+)\s*\{\s*hyper\s+([^;]*);", text)
    assert len(rules) == len({c[1] for c in CASES}), rules
    for rule, decl in rules:
        name = next(c[1] for c in CASES if normalized(c[1]) == normalized(rule))
        params = inspect.signature(getattr(optax, name)).parameters
        hypers = dict(item.split("=") for item in decl.replace(" ", "").replace("\n", "").split(","))
        for h, default in hypers.items():
            assert h in params, (rule, h)
            want = params[h].default
            if want is inspect.Parameter.empty:
                assert h == "learning_rate", (rule, h)
            elif isinstance(want, bool):
                assert default == str(want).lower(), (rule, h, default, want)
            else:
                assert float(default) == want, (rule, h, default, want)
        assert set(params) - set(hypers) == NOT_HYPERS.get(name, set()), (rule, set(params) - set(hypers))
        print(f"zoo.opt {rule}: hypers {', '.join(hypers)} match optax.{name}")


def main():
    os.makedirs(OUT, exist_ok=True)
    check_rules()
    for seed, (name, optimizer, hyper, dtype) in enumerate(CASES, start=100):
        start, grads, params, source = run_optax(optimizer, hyper, dtype, seed)
        assert all(np.isfinite(row).all() and np.abs(row).max() < 1e6 for row in params), name
        moved = np.abs(np.array(params[-1]) - np.array(start)).max()
        assert moved > 1e-3, (name, moved)
        if dtype == "f32":
            tolerance = {"rel": 2e-4, "abs": 1e-6}
        else:
            tolerance = {"rel": 1e-9, "abs": 1e-12}
        fixture = {"name": name, "optimizer": optimizer, "source": source, "hyper": hyper,
                   "dtype": dtype, "tolerance": tolerance,
                   "params0": start, "grads": grads, "params": params}
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(fixture, f)
            f.write("\n")
        print(f"{name}: {source}, largest move {moved:.3g}")


if __name__ == "__main__":
    main()
