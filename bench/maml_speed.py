"""Seconds per meta-iteration of MAML (meta-batch 4, 5-way 1-shot on MNIST).

Prints one table: conv net and MLP, second- and first-order, all tasks of a
meta-batch in one vmap versus a Python loop over tasks, and the Adam step.

    python bench/maml_speed.py [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from mamlpriv.data import TaskSampler, derive_seed, load_dataset
from mamlpriv.maml import MAMLConfig, meta_gradient
from mamlpriv.models import build_model, forward, init_params


def time_meta_iteration(
    arch: str, first_order: bool, vectorize: bool, repeats: int, sampler: TaskSampler
) -> list[float]:
    model = build_model(arch, 5)
    f = forward(model)
    params = {k: v.requires_grad_() for k, v in init_params(model).items()}
    opt = torch.optim.Adam(params.values(), lr=1e-3)
    cfg = MAMLConfig(inner_lr=0.4, inner_steps=1, first_order=first_order)
    times = []
    for it in range(repeats + 3):  # 3 warm-up iterations
        batch = sampler.sample_batch([derive_seed(0, it, i) for i in range(4)])
        t0 = time.perf_counter()
        g, _, _ = meta_gradient(f, {k: v.detach() for k, v in params.items()}, batch, cfg, vectorize=vectorize)
        for k, p in params.items():
            p.grad = g[k]
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it >= 3:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="data root (default: $MAMLPRIV_DATA)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sampler = TaskSampler(load_dataset("mnist", "train", args.data), ways=5, shots=1)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    print("seconds per meta-iteration (meta-batch 4, 5-way 1-shot, 1 inner step), median of", args.repeats)
    print(f"{'model':<6} {'order':<6} {'vmap':>10} {'loop':>10} {'loop/vmap':>10}")
    for arch in ("conv", "mlp"):
        for fo in (False, True):
            v = statistics.median(time_meta_iteration(arch, fo, True, args.repeats, sampler))
            lo = statistics.median(time_meta_iteration(arch, fo, False, args.repeats, sampler))
            print(f"{arch:<6} {'first' if fo else 'second':<6} {v:>10.4f} {lo:>10.4f} {lo / v:>10.2f}")


if __name__ == "__main__":
    main()
