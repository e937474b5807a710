"""The per-trial-weight convolution the attacks spend most of their time in, in three
layouts side by side in one run (issue 17: is there a layout that runs at dense speed?).

Under ``torch.func.vmap`` a convolution whose weight differs per trial becomes one
grouped convolution (``groups`` = trials). The alternatives lower it to a matrix
product: ``F.unfold`` (im2col) then ``@`` or ``einsum``, whose backward passes are
batched matrix products. Each measurement is what the attacks do to such a layer:
the gradient with respect to the inputs of a function of the per-trial weight
gradient (a double backward), for ``T`` trials of ``N`` images, a 3x3 stride-2
convolution as in :data:`~mamlpriv.models.ATTACK_NET`.

    python bench/conv_layouts.py [--threads 2] [--repeats 5]

Measured on 2 cores (2026-11-30, torch 2.14.1), milliseconds, grouped / unfold @ /
einsum: T=8 N=20 32->32 at 14x14 9.3 / 21.1 / 18.5; at 7x7 3.0 / 6.0 / 6.1; the first
layer 1->32 at 28x28 10.5 / 9.6 / 7.6; T=32 N=10 25.4 / 42.3 / 31.6; T=100 N=5 34.3 /
57.1 / 70.4 (same results to 3e-7). The grouped convolution wins except on the
one-channel first layer; einsum there alone changed whole attacks (8 trials, sizes 3,
10, 20) by -15% to +5%, within the spread of repeated runs,
so the library keeps the grouped convolution.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

Conv = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def grouped(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, Ci, H, W)``, ``w`` ``(Co, Ci, 3, 3)``: the library's convolution."""
    return F.conv2d(x, w, None, 2, 1)


def _cols(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    side = (x.shape[-1] + 2 - 3) // 2 + 1
    return F.unfold(x, 3, padding=1, stride=2), side  # (N, Ci * 9, side * side)


def unfold_matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The same convolution as im2col then a matrix product."""
    cols, side = _cols(x)
    return (w.reshape(w.shape[0], -1) @ cols).reshape(x.shape[0], w.shape[0], side, side)


def unfold_einsum(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The same convolution as im2col then ``einsum``."""
    cols, side = _cols(x)
    out = torch.einsum("ok,nkl->nol", w.reshape(w.shape[0], -1), cols)
    return out.reshape(x.shape[0], w.shape[0], side, side)


LAYOUTS: dict[str, Conv] = {"grouped": grouped, "unfold @": unfold_matmul, "einsum": unfold_einsum}


def double_backward(conv: Conv, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``d/dx sum_t |grad_w sum(relu(conv(x_t, w_t))^2)|^2`` for ``x`` ``(T, N, Ci, H,
    W)`` and per-trial weights ``w`` ``(T, Co, Ci, 3, 3)``."""

    def per_trial(wt: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        gw = grad(lambda v: conv(xt, v).relu().pow(2).sum())(wt)
        return (gw * gw).sum()

    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(vmap(per_trial)(w, x).sum(), x)[0]


def best_seconds(conv: Conv, x: torch.Tensor, w: torch.Tensor, repeats: int) -> float:
    double_backward(conv, x, w)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        double_backward(conv, x, w)
        times.append(time.perf_counter() - t0)
    return min(times)


SHAPES = [(8, 20, 32, 32, 14), (8, 20, 32, 32, 7), (8, 20, 1, 32, 28), (32, 10, 32, 32, 14), (100, 5, 32, 32, 14)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; best of {args.repeats}, ms")
    print(f"{'T':>4}{'N':>4}{'Ci':>4}{'Co':>4}{'side':>6}" + "".join(f"{k:>11}" for k in LAYOUTS) + f"{'max rel':>10}")
    for t, n, ci, co, side in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(t, n, ci, side, side, generator=gen)
        w = torch.randn(t, co, ci, 3, 3, generator=gen)
        ref = double_backward(grouped, x, w)
        rel = max(float((double_backward(c, x, w) - ref).norm() / ref.norm()) for c in LAYOUTS.values())
        ms = [1e3 * best_seconds(c, x, w, args.repeats) for c in LAYOUTS.values()]
        print(f"{t:>4}{n:>4}{ci:>4}{co:>4}{side:>6}" + "".join(f"{v:>11.1f}" for v in ms) + f"{rel:>10.1e}", flush=True)


if __name__ == "__main__":
    main()
