# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sensitivity of the attacks
#
# Section V-B2 of {cite:t}`rafiei2024privacy` varies the task shape and the training
# stage and reports how the attacks of the previous chapter respond (Figures 5-8). We
# repeat those measurements, add the first-order variant of MAML and the two knobs of
# the inner loop that scale the support term of the shared gradient (its learning rate
# and its number of steps), and play every stage curve in the strict game as well.
#
# Every point is a membership cell of the runner (`mamlpriv.catalog`): a game of test
# trials (half members) whose SSIM threshold is calibrated on separate validation trials,
# with a Wilson 95% interval on the accuracy and a bootstrap 95% interval on the AUC.
# The page shows the paper profile's stored cells where they exist (100 test trials per
# point) and computes its own profile for the rest; the `profile` column says which.

# %% tags=["parameters"]
profile = "quick"  # "quick" (CI, minutes) or "paper" (100 test and 100 validation trials per point)
results_dir = "../results"

# %%
import matplotlib.pyplot as plt
import pandas as pd

from mamlpriv import catalog, runner
from mamlpriv.plots import metric_curve
from mamlpriv.report import compare, membership_rows, verdict_best_at, verdict_decreasing, verdict_flat

if profile not in runner.PROFILES:
    raise ValueError(f"profile must be one of {runner.PROFILES}, got {profile!r}")
SHAPE = lambda k: (k["dataset"], k["target"], k["ways"], k["shots"])  # noqa: E731


def cells(experiment_for):
    return catalog.shown(experiment_for, profile, results_dir)


def frame(records, games=("paper",)):
    return pd.DataFrame(membership_rows(records, games))


base = cells(catalog.tables_1_2)
extra = cells(catalog.ways_shots)
shapes = frame(base + extra)

# %% [markdown]
# ## Figures 5 and 6: ways and shots
#
# Accuracy in the paper's game against the number of ways at one shot (Figure 5) and
# against the number of shots at three ways (Figure 6). The query attack runs on the
# untrained network, the support attack at the training stage each cell selected on its
# validation trials.

# %%
def dataset_panels(rows: pd.DataFrame):
    """One panel per dataset of ``rows``: ``(figure, [(axis, dataset), ...])``."""
    datasets = sorted(rows["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.4), squeeze=False)
    return fig, list(zip(axes[0], datasets))


def finish(ax, title: str) -> None:
    """Chance line, accuracy range, title and legend of one panel."""
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(0.3, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left")


def shape_figure(kind: str):
    if kind == "ways":
        fixed, axis, values = ("shots", 1), "ways", catalog.FIG5_WAYS
    else:
        fixed, axis, values = ("ways", 3), "shots", catalog.FIG6_SHOTS
    fig, panels = dataset_panels(shapes)
    for ax, ds in panels:
        for attack in ("query", "support"):
            sel = shapes[(shapes.dataset == ds) & (shapes.attack == attack) & (shapes[fixed[0]] == fixed[1])
                         & shapes[axis].isin(values)]
            metric_curve(sel.to_dict("records"), axis, "accuracy", ax=ax, label=f"{attack} attack")
        finish(ax, f"{ds}, {fixed[1]} {fixed[0]}")
    return fig


fig5 = shape_figure("ways")
plt.show()

# %%
fig6 = shape_figure("shots")
plt.show()

# %% [markdown]
# ## Figures 7 and 8: the training stage
#
# Each attack at snapshots of 3-way 1-shot meta-training, its learning rate chosen per
# stage on validation trials only (from {0.03, 0.1}); the meta-test accuracy of the same
# snapshot (dashed, right axis) shows how far training has got. Solid: the paper's game;
# dotted: the strict game.

# %%
stages = frame(cells(catalog.training_stages), games=("paper", "strict"))


def stage_figure(attack: str):
    fig, panels = dataset_panels(stages)
    for ax, ds in panels:
        for game, ls in (("paper", "-"), ("strict", ":")):
            sel = stages[(stages.dataset == ds) & (stages.attack == attack) & (stages.game == game)]
            metric_curve(sel.to_dict("records"), "stage", "accuracy", ax=ax, label=f"{game} game", ls=ls)
        learn = stages[(stages.dataset == ds) & (stages.attack == attack) & (stages.game == "paper")]
        twin = ax.twinx()
        metric_curve(learn.to_dict("records"), "stage", "learning_acc", ax=twin, band=False, color="grey", ls="--",
                     label="meta-test accuracy")
        twin.set_ylim(0, 1)
        twin.set_ylabel("meta-test accuracy (dashed)")
        twin.grid(False)
        ax.set_xlabel("meta-iteration")
        finish(ax, f"{attack} attack, {ds}")
    return fig


fig7 = stage_figure("query")
plt.show()

# %%
fig8 = stage_figure("support")
plt.show()

# %% [markdown]
# ## First-order MAML
#
# With first-order MAML (paper eq. 7) the shared gradient is the query gradient at the
# adapted parameters; the support set enters only through the adaptation, not through
# the Hessian term (section III-B). Each row compares a first-order cell with the
# second-order cell of the same shape (Tables I-II), paper's game: difference of accuracy
# (normal 95% half-width) and of AUC (bootstrap 95% interval).

# %%
second = {SHAPE(r["config"]): r for r in base}
fo_rows = []
for r in cells(catalog.first_order):
    so = second.get(SHAPE(r["config"]))
    if so is None:
        continue
    fo, sr = r["result"]["paper"], so["result"]["paper"]
    d = compare(fo, sr)
    fo_rows.append({"dataset": r["config"]["dataset"], "attack": r["config"]["target"], "ways": r["config"]["ways"],
                    "shots": r["config"]["shots"], "second-order accuracy": sr["metrics"]["accuracy"],
                    "first-order accuracy": fo["metrics"]["accuracy"], "Δ accuracy": d["accuracy_diff"],
                    "± (95%)": d["accuracy_diff_ci95"], "second-order AUC": sr["metrics"]["auc"],
                    "first-order AUC": fo["metrics"]["auc"], "Δ AUC": d["auc_diff"],
                    "Δ AUC 95% CI": f"[{d['auc_diff_lo']:+.2f}, {d['auc_diff_hi']:+.2f}]",
                    "profile (first / second order)": f"{r['shown']} / {so['shown']}"})
first_order = pd.DataFrame(fo_rows).set_index(["dataset", "attack", "ways", "shots"])
first_order.round(3)

# %% [markdown]
# ## Beyond the paper: the inner loop
#
# The support term of the second-order gradient is $-\alpha H_s\,\nabla\mathcal{L}_q$
# per inner step, so a larger inner rate $\alpha$ or more inner steps give the support
# set more weight in what is shared. MNIST 3-way 1-shot, paper's game; the inner rate
# 0.1 with one step is the Tables I-II cell.

# %%
mnist31 = [r for r in base if SHAPE(r["config"])[0] == "mnist" and SHAPE(r["config"])[2:] == (3, 1)]
loop = frame(cells(catalog.inner_loop) + mnist31)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
for attack in ("query", "support"):
    sel = loop[(loop.attack == attack) & (loop.inner_steps == 1)]
    metric_curve(sel.to_dict("records"), "inner_lr", "auc", ax=ax1, label=f"{attack} attack")
    sel = loop[(loop.attack == attack) & (loop.inner_lr == catalog.INNER_LR)]
    metric_curve(sel.to_dict("records"), "inner_steps", "auc", ax=ax2, label=f"{attack} attack")
ax1.set_xscale("log")
finish(ax1, "AUC against the inner learning rate (1 step)")
finish(ax2, f"AUC against inner steps (rate {catalog.INNER_LR})")
plt.show()
loop[["attack", "inner_lr", "inner_steps", "stage", "accuracy", "auc", "auc_lo", "auc_hi", "learning_acc",
      "profile"]].sort_values(["attack", "inner_steps", "inner_lr"]).round(3)

# %% [markdown]
# ## The paper's claims, checked
#
# Each claim is decided by the rule printed with it, on the numbers above (paper's game).

# %%
claims = []
for ds in sorted(shapes["dataset"].unique()):
    for attack in ("query", "support"):
        s = shapes[(shapes.dataset == ds) & (shapes.attack == attack)]
        ok, why = verdict_flat(s[(s.shots == 1) & s.ways.isin(catalog.FIG5_WAYS)].to_dict("records"), "ways")
        claims.append(("Fig. 5: accuracy roughly flat in ways", ds, attack, ok, why))
        ok, why = verdict_decreasing(s[(s.ways == 3) & s.shots.isin(catalog.FIG6_SHOTS)].to_dict("records"), "shots")
        claims.append(("Fig. 6: accuracy falls with shots", ds, attack, ok, why))
for ds in sorted(stages["dataset"].unique()):
    for attack, where, name in (("query", "first", "Fig. 7: query attack best at epoch 0"),
                                ("support", "inside", "Fig. 8: support attack best when partly trained")):
        s = stages[(stages.dataset == ds) & (stages.attack == attack) & (stages.game == "paper")]
        ok, why = verdict_best_at(s.to_dict("records"), "stage", where)
        claims.append((name, ds, attack, ok, why))
for claim, ds, attack, ok, why in claims:
    verdict = "UNDECIDED" if ok is None else "CONFIRMED" if ok else "NOT CONFIRMED"
    print(f"{claim} [{ds}, {attack}]: {verdict} -- {why}")

# %%
# sanity check for nbval: every figure has its points
assert len(shapes) and len(stages) and len(first_order) and len(loop)
