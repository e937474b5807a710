"""Snapshot of what the book pages show from the stored paper cells."""
import json
import sys

from mamlpriv import catalog
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
def shown(e): return catalog.shown(e, "paper", R, compute=False)
t12 = shown(catalog.tables_1_2)
ws = shown(catalog.ways_shots)
st = shown(catalog.training_stages)
rows12 = membership_rows(t12)
shape = shape_claims(membership_rows(t12 + ws, games=("paper",)))
stages = membership_rows(st)
sc = stage_claims(stages, "paper") + stage_claims(stages, "strict")
drows = defence_rows(shown(catalog.defence_attacks), shown(catalog.defence_learning))
out = {"tables_1_2": rows12, "shape_claims": shape, "stage_claims": sc, "defence_rows": drows,
       "defence_claims": defence_claims(drows), "first_effective": first_effective(drows),
       "order_comparison": order_comparison(shown(catalog.first_order), t12),
       "inner_loop": membership_rows(shown(catalog.inner_loop), games=("paper",)),
       "game_control": membership_rows(shown(catalog.game_control))}
json.dump(out, open(sys.argv[1], "w"), indent=0, sort_keys=True)
print({k: len(v) for k, v in out.items()})
