"""mamlpriv beside peer libraries: MAML meta-iteration and query-attack iteration, side by side.

1. One second-order MAML meta-iteration (5-way 1-shot, meta-batch 4, 1 inner step at
   rate 0.4, the GroupNorm conv net) at 1 and 15 query images per class: mamlpriv's
   ``meta_gradient`` (its default call, ``vectorize=True`` and ``vectorize=False``)
   against learn2learn's ``MAML`` (``clone()`` / ``adapt()``), ``higher``'s
   ``innerloop_ctx`` with SGD and a plain autograd loop (``create_graph=True`` over
   ``functional_call``). All must give the same meta-gradient first.
2. One iteration of the query attack (Adam on ``1 - cos + tv * TV``, the attack net)
   per trial: mamlpriv's ``query_objective`` batched over trials (chunked as
   ``query_attack`` chunks them) against a per-trial plain loop in the style of
   inverting gradients, at 3 and 20 images per trial. Both must give the same loss.
3. This CPU's fp32 peak (a large ``torch.mm``) and the share of it that one attack
   iteration reaches (matmul/convolution FLOPs counted by ``FlopCounterMode``).

Peers live in a separate environment (``make bench-env``; learn2learn pins an old
stack), so run it there:

    make peers            # .venv-bench/bin/python bench/peers.py
    python bench/peers.py [--repeats 30] [--threads 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from mamlpriv.attacks import CHUNK_IMAGES, chunks, query_objective
from mamlpriv.data import TaskBatch, TaskSampler, derive_seed, load_dataset
from mamlpriv.maml import MAMLConfig, meta_gradient, task_gradients
from mamlpriv.metrics import flat_rows
from mamlpriv.models import ATTACK_NET, build_model, forward, init_params

WAYS, META_BATCH, INNER_LR = 5, 4, 0.4
QUERIES = (1, 15)  # query images per class
ATTACK_SHAPES = {3: (3, 1), 20: (5, 4)}  # images per trial -> (ways, shots), as bench/attack_runtime.py
ATTACK_TRIALS = 100
LOOP_TRIALS = 10  # trials the per-trial loop times per round
ADAM_LR, TV_WEIGHT = 0.1, 1e-2
GRAD_TOL = 1e-5  # max abs difference of meta-gradients
LOSS_TOL = 1e-5  # relative difference of attack losses
WARMUP = 3

Grads = dict[str, torch.Tensor]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def import_peers() -> dict[str, object]:
    """The peer modules that import; a line for each that does not."""
    peers: dict[str, object] = {}
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # gym's "unmaintained" notice, printed on import
            import learn2learn

        peers["learn2learn"] = learn2learn
    except Exception as exc:  # ImportError, or a broken build of its Cython modules
        print(f"learn2learn: not available ({type(exc).__name__}: {exc}); skipped")
    try:
        import higher

        peers["higher"] = higher
    except Exception as exc:
        print(f"higher: not available ({type(exc).__name__}: {exc}); skipped")
    return peers


# ---------------------------------------------------------------- 1. MAML meta-iteration


def maml_batch(root: str | None, query: int, seed: int) -> TaskBatch:
    """Meta-batch of ``META_BATCH`` tasks, 5-way 1-shot support, ``query`` query images
    per class. The sampler draws ``query`` support and ``query`` query images per class
    (disjoint); the first support image of each class is kept."""
    sampler = TaskSampler(load_dataset("mnist", "train", root), ways=WAYS, shots=query)
    b = sampler.sample_batch([derive_seed(seed, i) for i in range(META_BATCH)])
    return TaskBatch(b.support_x[:, ::query], b.support_y[:, ::query], b.query_x, b.query_y)


def module_with(params: Grads) -> nn.Module:
    """A fresh conv net holding a copy of ``params`` (leaves that require grad)."""
    model = build_model("conv", WAYS)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model


def module_grads(model: nn.Module) -> Grads:
    return {k: p.grad for k, p in model.named_parameters()}


def maml_impls(params: Grads, peers: dict[str, object]) -> dict[str, Callable[[TaskBatch], Grads]]:
    """name -> ``step(batch)`` returning the gradient of the mean query loss with respect
    to the meta-parameters (all start from ``params``)."""
    cfg = MAMLConfig(inner_lr=INNER_LR, inner_steps=1, first_order=False)
    model = build_model("conv", WAYS)
    f = forward(model)
    omega = {k: v.detach().clone() for k, v in params.items()}
    impls: dict[str, Callable[[TaskBatch], Grads]] = {
        "mamlpriv": lambda b: meta_gradient(f, omega, b, cfg)[0],
        "mamlpriv vmap": lambda b: meta_gradient(f, omega, b, cfg, vectorize=True)[0],
        "mamlpriv loop": lambda b: meta_gradient(f, omega, b, cfg, vectorize=False)[0],
    }

    if "learn2learn" in peers:
        l2l = peers["learn2learn"]
        l2l_model = module_with(params)
        maml = l2l.algorithms.MAML(l2l_model, lr=INNER_LR, first_order=False)  # type: ignore[attr-defined]

        def l2l_step(b: TaskBatch) -> Grads:
            maml.zero_grad(set_to_none=True)
            for i in range(len(b)):
                xs, ys, xq, yq = b.task(i)
                learner = maml.clone()
                learner.adapt(F.cross_entropy(learner(xs), ys))
                (F.cross_entropy(learner(xq), yq) / len(b)).backward()
            return module_grads(l2l_model)

        impls["learn2learn"] = l2l_step

    if "higher" in peers:
        hi = peers["higher"]
        hi_model = module_with(params)
        inner_opt = torch.optim.SGD(hi_model.parameters(), lr=INNER_LR)

        def higher_step(b: TaskBatch) -> Grads:
            hi_model.zero_grad(set_to_none=True)
            for i in range(len(b)):
                xs, ys, xq, yq = b.task(i)
                with hi.innerloop_ctx(hi_model, inner_opt, copy_initial_weights=False) as (fmodel, diffopt):  # type: ignore[attr-defined]
                    diffopt.step(F.cross_entropy(fmodel(xs), ys))
                    (F.cross_entropy(fmodel(xq), yq) / len(b)).backward()
            return module_grads(hi_model)

        impls["higher"] = higher_step

    plain_model = build_model("conv", WAYS)
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}

    def plain_step(b: TaskBatch) -> Grads:
        for p in leaves.values():
            p.grad = None
        for i in range(len(b)):
            xs, ys, xq, yq = b.task(i)
            support = F.cross_entropy(functional_call(plain_model, leaves, (xs,)), ys)
            gs = torch.autograd.grad(support, list(leaves.values()), create_graph=True)
            fast = {k: p - INNER_LR * g for (k, p), g in zip(leaves.items(), gs)}
            (F.cross_entropy(functional_call(plain_model, fast, (xq,)), yq) / len(b)).backward()
        return {k: p.grad for k, p in leaves.items()}

    impls["autograd loop"] = plain_step
    return impls


def max_abs_diff(a: Grads, b: Grads) -> float:
    return max(float((a[k].detach() - b[k].detach()).abs().max()) for k in a)


def timed_rounds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function over ``repeats`` rounds after ``WARMUP`` rounds;
    each round runs every function once, in an order rotated from round to round."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(WARMUP + repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            fns[n]()
            dt = time.perf_counter() - t0
            if r >= WARMUP:
                times[n].append(dt)
    return {n: statistics.median(v) for n, v in times.items()}


def cycling(fn: Callable[[TaskBatch], Grads], batches: list[TaskBatch]) -> Callable[[], object]:
    """``fn`` on the next batch of ``batches`` (round robin) at each call."""
    calls = [0]

    def run() -> object:
        calls[0] += 1
        return fn(batches[calls[0] % len(batches)])

    return run


def bench_maml(root: str | None, repeats: int, peers: dict[str, object]) -> None:
    params = init_params(build_model("conv", WAYS), seed=0)
    print(
        f"\n1. MAML meta-iteration: conv net 4x32 GroupNorm, {WAYS}-way 1-shot, meta-batch {META_BATCH}, "
        f"second order, 1 inner step at {INNER_LR}"
    )
    print("   (gradient of the mean query loss w.r.t. the meta-parameters; no optimizer step)")
    results: dict[int, dict[str, float]] = {}
    for q in QUERIES:
        impls = maml_impls(params, peers)
        batch = maml_batch(root, q, seed=q)
        ref = {k: v.detach().clone() for k, v in impls["mamlpriv"](batch).items()}
        scale = max(float(v.abs().max()) for v in ref.values())
        diffs = {n: max_abs_diff(fn(batch), ref) for n, fn in impls.items() if n != "mamlpriv"}
        print(
            f"   query {q:>2}/class: max |g - g_mamlpriv| (largest |g| {scale:.3g}): "
            + ", ".join(f"{n} {d:.1e}" for n, d in diffs.items())
        )
        bad = {n: d for n, d in diffs.items() if not d <= GRAD_TOL}
        if bad:
            raise SystemExit(f"FAIL: meta-gradients differ from mamlpriv's by more than {GRAD_TOL:g}: {bad}")
        batches = [maml_batch(root, q, seed=100 + s) for s in range(4)]
        results[q] = timed_rounds({n: cycling(fn, batches) for n, fn in impls.items()}, repeats)

    names = list(results[QUERIES[0]])
    head = f"   {'implementation':<16}" + "".join(f"{f'q={q} s':>11}{'x default':>10}" for q in QUERIES)
    print(f"   seconds per meta-iteration, median of {repeats} (after {WARMUP} warm-up); x default = s / mamlpriv's")
    print(head)
    for n in names:
        row = f"   {n:<16}"
        for q in QUERIES:
            s = results[q][n]
            row += f"{s:>11.4f}{s / results[q]['mamlpriv']:>10.2f}"
        print(row)
    peer_names = [n for n in names if not n.startswith("mamlpriv")]
    libraries = [n for n in peer_names if n in peers]
    for q in QUERIES:
        r = results[q]
        best = min(peer_names, key=lambda n: r[n])
        line = f"   query {q:>2}/class: mamlpriv / fastest peer ({best}) = {r['mamlpriv'] / r[best]:.2f}"
        if libraries:
            lib = min(libraries, key=lambda n: r[n])
            line += f"; mamlpriv / fastest library ({lib}) = {r['mamlpriv'] / r[lib]:.2f}"
        print(line)


# ---------------------------------------------------------------- 2. query-attack iteration


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """TV of one trial's images ``(N, C, H, W)``: mean absolute neighbour difference per
    image, averaged over the images (the plain loop's own copy)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return (dh + dw).mean()


class AttackSetup:
    """``trials`` query-attack trials on the untrained attack net: targets (shared task
    gradients of real MNIST tasks, flat ``(T, P)``), labels ``(T, N)`` and a common
    starting batch ``(T, N, 1, 28, 28)`` (uniform noise, the target image in slot 0)."""

    def __init__(self, root: str | None, size: int, trials: int):
        ways, shots = ATTACK_SHAPES[size]
        self.net = ATTACK_NET.build(ways)
        self.f = forward(self.net)
        self.params = init_params(self.net, seed=0)
        sampler = TaskSampler(load_dataset("mnist", "test", root), ways, shots)
        batch = sampler.sample_batch([derive_seed(size, t) for t in range(trials)])
        g, _, _ = task_gradients(self.f, self.params, batch, MAMLConfig(INNER_LR, 1, False))
        self.target = flat_rows(g).detach()
        self.y = batch.query_y
        gen = torch.Generator().manual_seed(size)
        self.x_init = torch.rand(batch.query_x.shape, generator=gen)
        self.x_init[:, 0] = batch.query_x[:, 0]
        self.size, self.trials = size, trials


def mamlpriv_attack(setup: AttackSetup, trials: int) -> tuple[Callable[[], object], Callable[[], torch.Tensor]]:
    """One Adam iteration of mamlpriv's query objective on the first ``trials`` trials,
    chunked as ``query_attack`` chunks them. Returns ``(step, losses)``: ``step()`` runs
    one iteration of every chunk, ``losses()`` the objective of each trial at its current
    batch."""
    parts = []
    for rows in chunks(trials, setup.size, CHUNK_IMAGES):
        objective = query_objective(setup.f, setup.params, setup.target[rows], setup.y[rows], TV_WEIGHT)
        x = setup.x_init[rows].clone().requires_grad_(True)
        parts.append((objective, x, torch.optim.Adam([x], lr=ADAM_LR)))

    def step() -> None:
        for objective, x, opt in parts:
            opt.zero_grad(set_to_none=True)
            objective(x).sum().backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)

    def losses() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([objective(x) for objective, x, _ in parts])

    return step, losses


def loop_attack(setup: AttackSetup, trials: int) -> tuple[Callable[[], object], Callable[[], torch.Tensor]]:
    """The per-trial plain loop (inverting-gradients style): one trial at a time, its own
    batch and Adam; ``x.requires_grad``, the gradient of the loss w.r.t. the parameters
    with ``create_graph``, ``1 - cos + tv * TV``, backward, Adam step, clamp."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in setup.params.items()}
    plist = list(params.values())
    xs = [setup.x_init[t].clone().requires_grad_(True) for t in range(trials)]
    opts = [torch.optim.Adam([x], lr=ADAM_LR) for x in xs]

    def loss(t: int) -> torch.Tensor:
        x = xs[t]
        ce = F.cross_entropy(functional_call(setup.net, params, (x,)), setup.y[t])
        g = torch.cat([v.reshape(-1) for v in torch.autograd.grad(ce, plist, create_graph=True)])
        return 1 - F.cosine_similarity(g, setup.target[t], dim=0, eps=1e-30) + TV_WEIGHT * total_variation(x)

    def step() -> None:
        for t in range(trials):
            opts[t].zero_grad(set_to_none=True)
            loss(t).backward(inputs=[xs[t]])
            opts[t].step()
            with torch.no_grad():
                xs[t].clamp_(0.0, 1.0)

    def losses() -> torch.Tensor:
        return torch.stack([loss(t).detach() for t in range(trials)])

    return step, losses


def attack_flops(setup: AttackSetup) -> tuple[float, float]:
    """Matmul/convolution FLOPs of one objective + backward for one trial, counted by
    ``FlopCounterMode``: (mamlpriv's objective on 1 trial, the plain loop's iteration).

    Counted on one trial: over several trials, vmap turns the per-trial weight gradients
    into grouped convolutions, and the counter's ``convolution_backward`` formula ignores
    ``groups`` (it counted 13x the work at 100 trials, more than the CPU's peak allows)."""
    objective = query_objective(setup.f, setup.params, setup.target[:1], setup.y[:1], TV_WEIGHT)
    x = setup.x_init[:1].clone().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        objective(x).sum().backward()
    ours = float(counter.get_total_flops())
    step, _ = loop_attack(setup, 1)
    with FlopCounterMode(display=False) as counter:
        step()
    return ours, float(counter.get_total_flops())


def bench_attack(root: str | None, repeats: int) -> dict[int, tuple[float, float]]:
    """Returns, per images per trial: (FLOPs per trial-iteration, seconds per trial-iteration of mamlpriv batched)."""
    print(
        f"\n2. Query-attack iteration (attack net: conv 4x32 stride 2, no norm; Adam lr {ADAM_LR}, tv {TV_WEIGHT}): "
        "seconds per trial-iteration"
    )
    out: dict[int, tuple[float, float]] = {}
    rows = []
    for size in ATTACK_SHAPES:
        setup = AttackSetup(root, size, ATTACK_TRIALS)
        batched, batched_loss = mamlpriv_attack(setup, ATTACK_TRIALS)
        single, _ = mamlpriv_attack(setup, 1)
        loop, loop_loss = loop_attack(setup, LOOP_TRIALS)
        # same loss on the same trials, at the start and after 3 iterations on each side
        for when in ("start", "after 3 its"):
            a, b = batched_loss()[:LOOP_TRIALS], loop_loss()
            rel = float(((a - b).abs() / b.abs()).max())
            print(f"   {size:>2} images/trial, loss {when:<11}: max rel. diff mamlpriv vs loop {rel:.1e}")
            if not rel <= LOSS_TOL:
                raise SystemExit(f"FAIL: attack losses differ by more than {LOSS_TOL:g} (relative): {rel:.3g}")
            if when == "start":
                for _ in range(3):
                    batched()
                    loop()
        med = timed_rounds({"batched": batched, "single": single, "loop": loop}, repeats)
        per_trial = {
            "batched": med["batched"] / ATTACK_TRIALS,
            "single": med["single"],
            "loop": med["loop"] / LOOP_TRIALS,
        }
        flops, flops_loop = attack_flops(setup)
        out[size] = (flops, per_trial["batched"])
        rows.append((size, per_trial, flops, flops_loop))
    print(f"   median of {repeats} rounds (after {WARMUP} warm-up); the loop times {LOOP_TRIALS} trials per round")
    print(
        f"   {'images':>6}{f'mamlpriv x{ATTACK_TRIALS}':>15}{'mamlpriv x1':>13}{'plain loop':>12}"
        f"{'loop/batched':>14}{'loop/x1':>9}{'MFLOP/trial':>13}"
    )
    for size, pt, flops, flops_loop in rows:
        print(
            f"   {size:>6}{pt['batched']:>15.5f}{pt['single']:>13.5f}{pt['loop']:>12.5f}"
            f"{pt['loop'] / pt['batched']:>14.2f}{pt['loop'] / pt['single']:>9.2f}{flops / 1e6:>13.2f}"
        )
        if abs(flops_loop - flops) > 0.01 * flops:
            print(f"   (the plain loop counts {flops_loop / 1e6:.2f} MFLOP per trial-iteration at {size} images)")
    return out


# ---------------------------------------------------------------- 3. peak


def mm_peak(n: int = 2048, repeats: int = 10) -> float:
    """Median fp32 GFLOP/s of an ``n x n`` by ``n x n`` ``torch.mm``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    for _ in range(2):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def bench_peak(attack: dict[int, tuple[float, float]]) -> None:
    peak = mm_peak()
    print(f"\n3. fp32 peak: torch.mm 2048x2048 {peak:.1f} GFLOP/s")
    for size, (flops, seconds) in attack.items():
        achieved = flops / seconds / 1e9
        print(
            f"   attack iteration, {size:>2} images/trial, mamlpriv x{ATTACK_TRIALS}: {flops / 1e6:.2f} MFLOP "
            f"/ {seconds * 1e3:.3f} ms = {achieved:.1f} GFLOP/s = {100 * achieved / peak:.1f}% of peak"
        )
    print("   (FLOPs per trial: matmuls and convolutions of objective + backward, torch.utils.flop_counter on one")
    print("   trial; elementwise ops and the Adam step not counted)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed rounds per measurement (after 3 warm-up rounds)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="data root (default: $MAMLPRIV_DATA)")
    args = ap.parse_args()
    if args.repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    peers = import_peers()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}")
    print(
        "mamlpriv "
        + version("mamlpriv")
        + "".join(f", {n} {version(n)}" for n in ("learn2learn", "higher") if n in peers)
    )
    bench_maml(args.data, args.repeats, peers)
    attack = bench_attack(args.data, args.repeats)
    bench_peak(attack)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
