"""The AUC bootstrap, side by side: one roc_auc per resample (the former loop) against the
batched pair counts of mamlpriv.metrics, on the same resamples (100 trials, 1,000 draws).

    python bench/bootstrap.py
"""

import time

import numpy as np
import torch

from mamlpriv.metrics import _resampled_aucs, _resamples, roc_auc


def main(trials: int = 100, n_boot: int = 1000, repeats: int = 3) -> None:
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(trials, generator=gen, dtype=torch.float64)
    y = torch.arange(trials) % 2 == 0
    idx = _resamples(y, np.random.default_rng(0), n_boot)
    rows = torch.from_numpy(idx)

    def loop():
        return np.array([roc_auc(s[r], y[r]) for r in rows])

    def batched():
        return _resampled_aucs(s, idx, int(y.sum()))

    assert np.allclose(loop(), batched(), rtol=0, atol=1e-12)
    for name, fn in (("roc_auc per resample", loop), ("batched pair counts", batched)):
        best = min(_timed(fn) for _ in range(repeats))
        print(f"{name:24s} {best * 1e3:8.1f} ms for {n_boot} resamples of {trials} trials")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
