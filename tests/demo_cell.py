"""A tiny cell for the runner's tests: a pure function of its configuration (no torch),
importable by worker processes and by the subprocess of the killed-run test."""

import random
import time
from dataclasses import dataclass

COMPUTED: list[int] = []  # seeds computed in this process, in order


@dataclass(frozen=True)
class DemoCell:
    seed: int
    n: int = 50
    sleep: float = 0.0

    def to_config(self) -> dict:
        return {"seed": self.seed, "n": self.n, "sleep": self.sleep}

    def compute(self) -> dict:
        COMPUTED.append(self.seed)
        time.sleep(self.sleep)
        rng = random.Random(self.seed)
        xs = [rng.random() for _ in range(self.n)]
        return {"mean": sum(xs) / self.n, "max": max(xs)}


def expected(cell: DemoCell) -> dict:
    """What ``cell.compute()`` returns, computed independently of the runner."""
    rng = random.Random(cell.seed)
    xs = [rng.random() for _ in range(cell.n)]
    return {"mean": sum(xs) / cell.n, "max": max(xs)}
