"""Extra reference trajectories for `optdsl replay`: option values and
combinations the fixtures in tests/golden do not use, in f32 and f64.

Produced with torch 2.15.0 (CPU, torch.optim's default single-tensor code path,
default dtype float32 so scalar state such as NAdam's mu_product and ASGD's
eta/mu is float32 as in the golden fixtures) and optax 0.2.8 on jax 0.10.2
(jax_enable_x64 for the f64 fixtures), numpy 2.x:

    pip install numpy torch optax
    python3 tests/golden/extra/generate.py     # writes tests/golden/extra/*.json

The objective is 12-dimensional as in tests/golden/README.md: a Rosenbrock
valley on coordinates 0-1, an ill-conditioned noisy quadratic on 2-8, a sparse
coordinate (9: a gradient every 4th step), an always-zero gradient (10) and a
quadratic with occasional exact-zero gradients (11). Each step's gradient is
taken at the reference's own parameters and recorded, so a replay feeds the
same gradients. The format is tests/golden/README.md's.
"""

import json
import os

import numpy as np

STEPS = 60
DIM = 12
HERE = os.path.dirname(os.path.abspath(__file__))
CURV = np.logspace(-1.5, 1.5, 7)


def gradient(w, k, rng):
    """The objective's gradient at w (float64) on step k (0-based)."""
    g = np.zeros(DIM)
    x, y = w[0], w[1]
    g[0] = -2 * (1 - x) - 400 * x * (y - x * x)
    g[1] = 200 * (y - x * x)
    g[2:9] = CURV * w[2:9] + 0.1 * rng.standard_normal(7)
    g[9] = (w[9] - 0.5) if k % 4 == 0 else 0.0
    g[10] = 0.0
    g[11] = 0.0 if rng.random() < 0.2 else 2.0 * w[11] + 0.05 * rng.standard_normal()
    return g


def sign(hyper):
    """With `maximize` the objective is -f (gradients negated), so that the
    ascent on it is a descent on f and stays bounded."""
    return -1.0 if hyper.get("maximize") else 1.0


def params0(seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.5, 1.5, DIM)
    w[0], w[1] = -0.8, 1.2
    return w


def run_torch(cls, hyper, dtype, seed):
    import torch

    tdt = torch.float32 if dtype == "f32" else torch.float64
    npdt = np.float32 if dtype == "f32" else np.float64
    p = torch.nn.Parameter(torch.tensor(params0(seed).astype(npdt), dtype=tdt))
    kwargs = dict(hyper)
    for key in ("betas", "etas", "step_sizes"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    opt = getattr(torch.optim, cls)([p], **kwargs)
    rng = np.random.default_rng(seed + 1000)
    start = [float(x) for x in p.detach().numpy()]
    grads, params = [], []
    for k in range(STEPS):
        g = (sign(hyper) * gradient(p.detach().numpy().astype(np.float64), k, rng)).astype(npdt)
        p.grad = torch.tensor(g, dtype=tdt)
        opt.step()
        grads.append([float(x) for x in g])
        params.append([float(x) for x in p.detach().numpy()])
    return start, grads, params, f"torch {torch.__version__} torch.optim.{cls}"


def run_optax(name, hyper, dtype, seed):
    import jax

    jax.config.update("jax_enable_x64", dtype == "f64")
    import jax.numpy as jnp
    import optax

    npdt = np.float32 if dtype == "f32" else np.float64
    opt = getattr(optax, name)(**hyper)
    w = jnp.asarray(params0(seed).astype(npdt))
    state = opt.init(w)
    rng = np.random.default_rng(seed + 1000)
    start = [float(x) for x in np.asarray(w)]
    grads, params = [], []
    for k in range(STEPS):
        g = (sign(hyper) * gradient(np.asarray(w).astype(np.float64), k, rng)).astype(npdt)
        updates, state = opt.update(jnp.asarray(g), state, w)
        w = optax.apply_updates(w, updates)
        grads.append([float(x) for x in g])
        params.append([float(x) for x in np.asarray(w)])
    return start, grads, params, f"optax {optax.__version__} optax.{name} (jax {'x64' if dtype == 'f64' else 'f32'})"


SCALAR_F32 = ("torch keeps ASGD's eta and mu and NAdam's mu_product as float32 scalars "
              "even for float64 parameters; the tolerance allows the ~1e-7 relative difference")

# (name, library, optimizer, hyper, dtype)
CASES = [
    ("sgd-all-f32", "torch", "SGD", {"lr": 0.003, "momentum": 0.7, "dampening": 0.3, "weight_decay": 0.02}, "f32"),
    ("sgd-nesterov-wd-maximize", "torch", "SGD", {"lr": 0.0005, "momentum": 0.6, "nesterov": True, "weight_decay": 0.01, "maximize": True}, "f64"),
    ("sgd-nesterov-f32", "torch", "SGD", {"lr": 0.001, "momentum": 0.95, "nesterov": True}, "f32"),
    ("adagrad-all", "torch", "Adagrad", {"lr": 0.05, "lr_decay": 0.1, "weight_decay": 0.01, "initial_accumulator_value": 0.5, "eps": 1e-6}, "f64"),
    ("adagrad-maximize-f32", "torch", "Adagrad", {"lr": 0.02, "maximize": True, "weight_decay": 0.05}, "f32"),
    ("rmsprop-centered-wd", "torch", "RMSprop", {"lr": 0.003, "alpha": 0.95, "centered": True, "weight_decay": 0.01, "eps": 1e-6}, "f64"),
    ("rmsprop-momentum-maximize-f32", "torch", "RMSprop", {"lr": 0.001, "momentum": 0.5, "maximize": True, "eps": 1e-4}, "f32"),
    ("rmsprop-centered-momentum-f32", "torch", "RMSprop", {"lr": 0.002, "centered": True, "momentum": 0.8, "weight_decay": 0.1}, "f32"),
    ("rprop-etas-steps", "torch", "Rprop", {"lr": 0.02, "etas": [0.3, 1.5], "step_sizes": [0.001, 0.05]}, "f64"),
    ("rprop-maximize-f32", "torch", "Rprop", {"lr": 0.001, "maximize": True}, "f32"),
    ("adadelta-all", "torch", "Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 0.01}, "f64"),
    ("adadelta-maximize-f32", "torch", "Adadelta", {"lr": 0.1, "maximize": True}, "f32"),
    ("adam-amsgrad-wd-maximize", "torch", "Adam", {"lr": 0.001, "amsgrad": True, "weight_decay": 0.01, "maximize": True}, "f64"),
    ("adam-decoupled-amsgrad", "torch", "Adam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1, "amsgrad": True, "betas": [0.5, 0.9]}, "f64"),
    ("adam-betas-eps-f32", "torch", "Adam", {"lr": 0.02, "betas": [0.5, 0.9], "eps": 1e-6, "weight_decay": 0.01}, "f32"),
    ("adamw-amsgrad-maximize", "torch", "AdamW", {"lr": 0.001, "amsgrad": True, "maximize": True, "betas": [0.85, 0.95]}, "f64"),
    ("adamw-f32", "torch", "AdamW", {"lr": 0.01}, "f32"),
    ("adamax-all", "torch", "Adamax", {"lr": 0.01, "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.01}, "f64"),
    ("adamax-maximize-f32", "torch", "Adamax", {"lr": 0.001, "maximize": True}, "f32"),
    ("nadam-decoupled", "torch", "NAdam", {"lr": 0.01, "momentum_decay": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.05}, "f64"),
    ("nadam-wd-maximize-f32", "torch", "NAdam", {"lr": 0.001, "weight_decay": 0.01, "maximize": True, "betas": [0.8, 0.99]}, "f32"),
    ("radam-decoupled", "torch", "RAdam", {"lr": 0.002, "decoupled_weight_decay": True, "weight_decay": 0.05, "betas": [0.9, 0.99]}, "f64"),
    ("radam-wd-maximize-f32", "torch", "RAdam", {"lr": 0.001, "weight_decay": 0.01, "maximize": True, "eps": 1e-6}, "f32"),
    ("asgd-all", "torch", "ASGD", {"lr": 0.003, "lambd": 0.001, "alpha": 0.5, "t0": 5.0, "weight_decay": 0.01}, "f64"),
    ("asgd-maximize-f32", "torch", "ASGD", {"lr": 0.0005, "t0": 10.0, "maximize": True}, "f32"),
    ("lion-betas", "optax", "lion", {"learning_rate": 0.01, "b1": 0.95, "b2": 0.98, "weight_decay": 0.1}, "f64"),
    ("lion-default-f32", "optax", "lion", {"learning_rate": 0.003}, "f32"),
    ("lamb-f32", "optax", "lamb", {"learning_rate": 0.02, "weight_decay": 0.1, "eps": 1e-8}, "f32"),
    ("lamb-betas", "optax", "lamb", {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99}, "f64"),
    ("adabelief-eps", "optax", "adabelief", {"learning_rate": 0.01, "b1": 0.8, "eps": 1e-8, "eps_root": 1e-12}, "f64"),
    ("adabelief-f32", "optax", "adabelief", {"learning_rate": 0.01}, "f32"),
]


def main():
    for seed, (name, lib, optimizer, hyper, dtype) in enumerate(CASES):
        runner = run_torch if lib == "torch" else run_optax
        start, grads, params, source = runner(optimizer, hyper, dtype, seed)
        assert all(np.isfinite(row).all() and np.abs(row).max() < 1e6 for row in params), name
        if dtype == "f32":
            tolerance = {"rel": 2e-4, "abs": 1e-6}
        elif optimizer in ("NAdam", "ASGD"):
            tolerance = {"rel": 1e-5, "abs": 1e-9}
        else:
            tolerance = {"rel": 1e-9, "abs": 1e-12}
        fixture = {"name": name, "optimizer": optimizer, "source": source, "hyper": hyper,
                   "dtype": dtype, "tolerance": tolerance}
        if optimizer in ("NAdam", "ASGD") and dtype == "f64":
            fixture["note"] = SCALAR_F32
        fixture.update({"params0": start, "grads": grads, "params": params})
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(fixture, f)
            f.write("\n")
        print(name, source)


if __name__ == "__main__":
    main()
