"""GPU smoke test and timings of the paper profile's heaviest cells.

1. The same computations on the CPU and on ``--device`` must agree (up to float rounding):
   a second-order meta-gradient, the real task gradients of a game and one attack run of
   each kind from the same seeded start.
2. Seconds per trial of the heaviest attacks (support and query, Tables III-IV's size 20 at
   200 iterations; 100 trials batched) and seconds per meta-iteration, on the device and on
   the CPU, side by side.

    python bench/gpu_smoke.py --device cuda            # on a machine with a GPU
    python bench/gpu_smoke.py --device cpu --trials 8  # the script's own check, anywhere

Without the device it says so and exits with status 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from mamlpriv import devices
from mamlpriv.attacks import attack_for
from mamlpriv.cells import RUNTIME_SHAPES
from mamlpriv.data import TaskSampler, load_dataset, stack_tasks
from mamlpriv.maml import MAMLConfig, meta_gradient, task_gradients
from mamlpriv.metrics import flat_rows
from mamlpriv.models import ATTACK_NET, NetConfig, forward, init_params
from mamlpriv.seeds import derive_seed


def _batch(ways: int, shots: int, tasks: int, seed: int = 0):
    sampler = TaskSampler(load_dataset("mnist", "test"), ways, shots)
    return stack_tasks([sampler.sample(derive_seed(seed, t)) for t in range(tasks)])


def _timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernel selection, allocator)
    devices.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    devices.synchronize(device)
    return (time.perf_counter() - t0) / repeats


def agreement(device: torch.device) -> None:
    """Largest differences between the CPU and ``device``, relative to the largest value."""
    cpu = torch.device("cpu")
    maml = MAMLConfig(0.4, 1, False)
    net = NetConfig()
    model = net.build(5)
    f, p = forward(model), init_params(model)
    batch = _batch(5, 1, 4)
    a = flat_rows({k: v[None] for k, v in meta_gradient(f, p, batch, maml)[0].items()})
    b = flat_rows({k: v[None] for k, v in meta_gradient(f, devices.move(p, device), batch.to(device), maml)[0].items()})
    print(f"meta-gradient (conv net, 5-way 1-shot): max |cpu - {device}| / max |g| = "
          f"{float((a - b.cpu()).abs().max() / a.abs().max()):.1e}")  # fmt: skip
    f = forward(ATTACK_NET.build(3))
    p = init_params(ATTACK_NET.build(3))
    batch = _batch(3, 1, 8)
    for target in ("query", "support"):
        spec = attack_for(target)
        cfg = dataclasses.replace(spec.defaults, iterations=20)
        out = []
        for dev in (cpu, device):
            q, bt = devices.move(p, dev), batch.to(dev)
            g = task_gradients(f, q, bt, maml)[0]
            x0 = getattr(bt, f"{target}_x")[:, 0]
            slot = torch.zeros(8, dtype=torch.long, device=dev)
            res = spec.run(f, q, g, bt, x0, slot, maml, cfg, torch.Generator().manual_seed(0))
            out.append((res.loss[:, -1].cpu(), res.scores))
        dl = float((out[0][0] - out[1][0]).abs().max())
        ds = float((out[0][1] - out[1][1]).abs().max())
        print(f"{target} attack, 20 iterations: final loss differs by {dl:.1e}, SSIM by {ds:.1e}")


def timings(device: torch.device, trials: int, iterations: int) -> None:
    cpu = torch.device("cpu")
    maml = MAMLConfig(0.4, 1, False)
    ways, shots = RUNTIME_SHAPES[20]
    f = forward(ATTACK_NET.build(ways))
    p = init_params(ATTACK_NET.build(ways))
    batch = _batch(ways, shots, trials)
    print(f"seconds per trial, size 20 ({ways}-way {shots}-shot), {iterations} iterations, {trials} trials batched")
    print(f"{'attack':<10} {'cpu':>10} {str(device):>10} {'speed-up':>9}")
    for target in ("query", "support"):
        spec = attack_for(target)
        cfg = dataclasses.replace(spec.defaults, iterations=iterations)
        secs = []
        for dev in (cpu, device):
            q, bt = devices.move(p, dev), batch.to(dev)
            g = task_gradients(f, q, bt, maml)[0]
            x0 = getattr(bt, f"{target}_x")[:, 0]
            slot = torch.zeros(trials, dtype=torch.long, device=dev)

            def run(q=q, bt=bt, g=g, x0=x0, slot=slot, spec=spec, cfg=cfg):
                spec.run(f, q, g, bt, x0, slot, maml, cfg, torch.Generator().manual_seed(0))

            secs.append(_timed(run, dev, 1) / trials)
        print(f"{target:<10} {secs[0]:>10.4f} {secs[1]:>10.4f} {secs[0] / secs[1]:>8.1f}x")
    model = NetConfig().build(5)
    f, p = forward(model), init_params(model)
    batch = _batch(5, 1, 4)
    secs = [
        _timed(lambda dev=dev: meta_gradient(f, devices.move(p, dev), batch.to(dev), maml), dev, 10)
        for dev in (cpu, device)
    ]
    ratio = secs[0] / secs[1]
    print(f"{'meta-iter':<10} {secs[0]:>10.4f} {secs[1]:>10.4f} {ratio:>8.1f}x  (conv net, 5-way 1-shot, 4 tasks)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    try:
        device = devices.resolve(args.device)
    except ValueError as e:
        print(f"nothing to measure: {e}")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, device {device} ({name})")
    agreement(device)
    timings(device, args.trials, args.iterations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
