"""Time of one attack iteration against the chunk size (images optimised together),
side by side in one run: 100 trials of a task shape, all in one batch or split into
chunks of at most ``--limits`` images (``attacks.chunks``). Seconds per iteration for
all 100 trials; untrained :data:`~mamlpriv.models.ATTACK_NET`, MNIST, inner rate
0.1, as in the paper profile.

    python bench/attack_chunks.py [--shapes 3x1 5x3 7x3] [--limits 0 512 256] [--threads 2]

A limit of 0 means one batch (``chunk_images=None``).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from mamlpriv.attacks import AttackConfig, chunks, query_attack, support_attack
from mamlpriv.data import TaskSampler, derive_seed, load_dataset, stack_tasks
from mamlpriv.maml import MAMLConfig, task_gradients
from mamlpriv.models import ATTACK_NET, forward, init_params


def seconds_per_iteration(
    attack: str, ways: int, shots: int, limit: int | None, trials: int, iterations: int, data
) -> float:
    """Wall time of :func:`~mamlpriv.attacks.query_attack` / ``support_attack`` with
    ``chunk_images=limit`` over ``iterations`` iterations, per iteration (after a warm-up
    run of one iteration)."""
    model = ATTACK_NET.build(ways)
    f, p = forward(model), init_params(model, seed=0)
    batch = stack_tasks([TaskSampler(data, ways, shots).sample(derive_seed(7, t)) for t in range(trials)])
    maml = MAMLConfig(0.1)
    g = task_gradients(f, p, batch, maml)[0]
    slot = torch.zeros(trials, dtype=torch.long)

    def attack_once(n: int) -> None:
        if attack == "support":
            support_attack(
                f,
                p,
                g,
                batch.support_y,
                batch.query_x,
                batch.query_y,
                batch.support_x[:, 0],
                slot,
                maml,
                AttackConfig(iterations=n),
                chunk_images=limit,
            )
        else:
            query_attack(
                f, p, g, batch.query_y, batch.query_x[:, 0], slot, AttackConfig(iterations=n), chunk_images=limit
            )

    attack_once(1)  # warm-up
    t0 = time.perf_counter()
    attack_once(iterations)
    return (time.perf_counter() - t0) / iterations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["3x1", "5x3", "7x3"], help="ways x shots")
    ap.add_argument("--limits", type=int, nargs="+", default=[0, 512, 256])
    ap.add_argument("--attacks", nargs="+", default=["support", "query"], choices=["support", "query"])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=3, help="attack iterations timed per entry")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist", "test")
    limits = [lim or None for lim in args.limits]
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; {args.trials} trials; "
        "seconds per iteration (chunk sizes in trials)"
    )
    head = "".join(f"{('one batch' if lim is None else f'<= {lim} img'):>16}" for lim in limits)
    print(f"{'attack':<9}{'shape':<7}{head}{'best speed-up':>15}")
    for attack in args.attacks:
        for shape in args.shapes:
            w, s = map(int, shape.split("x"))
            secs = [seconds_per_iteration(attack, w, s, lim, args.trials, args.iterations, data) for lim in limits]
            cells = ""
            for lim, sec in zip(limits, secs):
                sizes = sorted({c.stop - c.start for c in chunks(args.trials, w * s, lim)}, reverse=True)
                cells += f"{sec:>8.3f} ({'/'.join(map(str, sizes)):>5})"
            print(f"{attack:<9}{shape:<7}{cells}{secs[0] / min(secs):>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
