"""A cell that records the process computing it and then waits: the runner's test of
killed parallel runs (no torch)."""

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidCell:
    seed: int
    folder: str
    sleep: float = 60.0

    def to_config(self) -> dict:
        return {"seed": self.seed, "folder": self.folder, "sleep": self.sleep}

    def compute(self) -> dict:
        Path(self.folder, str(self.seed)).write_text(str(os.getpid()))
        time.sleep(self.sleep)
        return {"pid": os.getpid()}
