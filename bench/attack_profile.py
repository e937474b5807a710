"""Where one iteration of an attack spends its time: torch's profiler on the attack's
objective and its backward pass (what ``_optimise`` does per iteration), for ``trials``
trials of a Tables III-IV task shape, by operator and by operator and input shape.

The attacks run on :data:`~mamlpriv.models.ATTACK_NET` with per-trial weights in the
adapted network (the support attack) or per-trial image batches (both), which
``torch.func.vmap`` turns into grouped convolutions. Read it beside
``bench/conv_layouts.py`` (other layouts of the same convolutions).

    python bench/attack_profile.py [--target support] [--size 20] [--trials 8] [--threads 2]

Measured on 2 cores (2026-11-30, torch 2.14.1), support attack, size 20 (5-way 4-shot),
8 trials: 0.149 s per iteration; by self time, ``convolution_backward`` 33%,
``mkldnn_convolution`` 23%, ``_convolution`` 14% (oneDNN's transposed convolutions,
called without the dispatcher; the input gradient through the one-channel first layer,
``(20, 256, 14, 14)`` against ``(256, 1, 3, 3)``, alone 11%: 3.8 ms per call for 18
MFLOP, about 5 GFLOP/s), ``copy_`` 12% (the contiguous copies of vmap's grouped layout);
element-wise operators under 3% each.
"""

from __future__ import annotations

import argparse
import time

import torch

from mamlpriv.attacks import query_objective, support_objective
from mamlpriv.catalog import INNER_LR
from mamlpriv.cells import RUNTIME_SHAPES
from mamlpriv.data import TaskSampler, load_dataset, stack_tasks
from mamlpriv.maml import MAMLConfig, task_gradients
from mamlpriv.metrics import flat_rows
from mamlpriv.models import ATTACK_NET, forward, init_params
from mamlpriv.seeds import derive_seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="support", choices=["query", "support"])
    ap.add_argument("--size", type=int, default=20, choices=sorted(RUNTIME_SHAPES))
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=15, help="operators listed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ways, shots = RUNTIME_SHAPES[args.size]
    model = ATTACK_NET.build(ways)
    f, p = forward(model), init_params(model, seed=0)
    sampler = TaskSampler(load_dataset("mnist", "test"), ways, shots)
    batch = stack_tasks([sampler.sample(derive_seed(args.size, t)) for t in range(args.trials)])
    maml = MAMLConfig(INNER_LR, 1, False)
    g, _, _ = task_gradients(f, p, batch, maml)
    target = flat_rows(g).detach()
    if args.target == "support":
        obj = support_objective(f, p, target, batch.support_y, batch.query_x, batch.query_y, maml, 0.01)
        x = torch.rand(batch.support_x.shape, generator=torch.Generator().manual_seed(0))
    else:
        obj = query_objective(f, p, target, batch.query_y, 0.01)
        x = torch.rand(batch.query_x.shape, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)

    def step() -> None:
        x.grad = None
        obj(x).sum().backward()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(10):
        step()
    print(
        f"{args.target} attack, size {args.size} ({ways}-way {shots}-shot), {args.trials} trials, "
        f"{args.threads} threads: {(time.perf_counter() - t0) / 10:.3f} s per iteration"
    )
    with torch.profiler.profile(record_shapes=True) as prof:
        for _ in range(3):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    by_shape = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    print("by operator and input shapes (self time of 3 iterations):")
    for e in by_shape[: args.rows]:
        shapes = ", ".join(str(tuple(s)) for s in e.input_shapes if s)
        print(f"  {e.self_cpu_time_total / 1e3:8.1f} ms {e.count:5d} x {e.key:<32} {shapes[:90]}")


if __name__ == "__main__":
    main()
