"""Wall time of the paper profile, per experiment, from the stored cells' own timings.

Every cell file of ``results/paper/`` records the seconds its function ran and the
machine it ran on (cores, torch threads). This table sums them per experiment, and for
an unfinished experiment extrapolates its finished cells' mean to the missing ones (an
estimate: cells of one experiment differ in cost, so the line says how many it rests on).
Meta-training runs are cached between cells (``cells.runs_dir``), so the first cell of
a task shape carries its training time and the others do not; together they count it once.

    python bench/paper_profile.py [--root results] [--profile paper] [--budget-hours 6]

Measure it on the target machine: ``make paper`` (2 CPU cores: ``MAMLPRIV_THREADS=2``),
then this script. The "stored on" column gives the dates the cells were computed: a shared
machine can run at another speed on another day (``bench/attack_runtime.py --stored``
measures the runtime cells again beside the stored ones), so sums over cells of different
days are only as comparable as those days.
"""

from __future__ import annotations

import argparse
import statistics

from mamlpriv import catalog, runner


def summary(profile: str, root: str) -> list[dict]:
    rows = []
    for e in catalog.experiments(profile):
        done = runner.load(e, profile, root, missing_ok=True)
        secs = [r["seconds"] for r in done]
        machines = sorted({r.get("provenance", {}).get("machine", "?") for r in done})
        dates = sorted({r.get("provenance", {}).get("date", "?") for r in done})
        mean = statistics.fmean(secs) if secs else float("nan")
        rows.append(
            {
                "experiment": e.name,
                "cells": len(e.cells),
                "done": len(done),
                "hours": sum(secs) / 3600,
                "median_s": statistics.median(secs) if secs else float("nan"),
                "max_s": max(secs, default=float("nan")),
                "estimate_h": (sum(secs) + mean * (len(e.cells) - len(done))) / 3600 if secs else float("nan"),
                "machines": "; ".join(machines),
                "dates": " to ".join(dict.fromkeys([dates[0], dates[-1]])) if dates else "-",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="results")
    ap.add_argument("--profile", default="paper", choices=runner.PROFILES)
    ap.add_argument("--budget-hours", type=float, default=6.0, help="the bound to compare the total with")
    args = ap.parse_args()
    rows = summary(args.profile, args.root)
    print(
        f"{'experiment':<28}{'cells':>11}{'hours':>8}{'median s':>10}{'max s':>9}{'all (est.) h':>14}"
        f"  {'stored on':<24}  machine"
    )
    for r in rows:
        est = f"{r['estimate_h']:14.2f}" if r["done"] else f"{'-':>14}"
        print(
            f"{r['experiment']:<28}{r['done']:>5}/{r['cells']:<5}{r['hours']:>8.2f}{r['median_s']:>10.1f}"
            f"{r['max_s']:>9.1f}{est}  {r['dates']:<24}  {r['machines']}"
        )
    done_h = sum(r["hours"] for r in rows)
    complete = all(r["done"] == r["cells"] for r in rows)
    if complete:
        verdict = "within" if done_h <= args.budget_hours else "OVER"
        print(f"whole profile: {done_h:.2f} h of cell time, {verdict} the {args.budget_hours:g} h bound")
    else:
        missing = [r["experiment"] for r in rows if r["done"] == 0]
        known = sum(r["estimate_h"] for r in rows if r["done"])
        print(
            f"measured so far: {done_h:.2f} h; with the unfinished experiments extrapolated: {known:.2f} h"
            + (f" plus {', '.join(missing)} (no cell yet)" if missing else "")
        )


if __name__ == "__main__":
    main()
