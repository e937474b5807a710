"""Snapshot of what the book pages show from the stored paper cells, with today's API
(:func:`mamlpriv.pages.shown`); the same structure as ``make_pages_before.py``.

    python tests/data/make_pages_snapshot.py tests/data/pages_after_verdicts.json
"""

import json
import sys

from mamlpriv import pages
from mamlpriv.report import (
    defence_claims,
    defence_rows,
    first_effective,
    membership_rows,
    order_comparison,
    shape_claims,
    stage_claims,
)

R = "results"


def shown(e):
    return pages.shown(e, "paper", R, compute=False)


t12, ws, st = shown("tables-1-2"), shown("ways-shots"), shown("training-stages")
stages = membership_rows(st)
drows = defence_rows(shown("defence-attacks"), shown("defence-learning"))
out = {"tables_1_2": membership_rows(t12), "shape_claims": shape_claims(membership_rows(t12 + ws, games=("paper",))),
       "stage_claims": stage_claims(stages, "paper") + stage_claims(stages, "strict"), "defence_rows": drows,
       "defence_claims": defence_claims(drows), "first_effective": first_effective(drows),
       "order_comparison": order_comparison(shown("first-order"), t12),
       "inner_loop": membership_rows(shown("inner-loop"), games=("paper",)),
       "game_control": membership_rows(shown("game-control"))}
with open(sys.argv[1] if len(sys.argv) > 1 else "tests/data/pages_after_verdicts.json", "w") as fh:
    json.dump(out, fh, indent=0, sort_keys=True)
print({k: len(v) for k, v in out.items()})
