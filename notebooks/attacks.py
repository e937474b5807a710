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
# # Membership inference on the query and the support set
#
# This chapter reproduces section IV and the effectiveness and efficiency results of
# section V-B of {cite:t}`rafiei2024privacy`: Figure 4 and Tables I-IV.
#
# **The game** (section IV-A). A challenger draws a task and a bit $b$. If $b = 1$ the
# target image $x_0$ is one of the task's own images (in its query set for the query
# attack, in its support set for the support attack); if $b = 0$ it is a non-member. The
# task-learner computes its shared gradient $g$ as usual; the adversary, a passive
# meta-learner holding $\omega$ and $g$, must guess $b$. In the *paper's game* the
# non-member is drawn from the whole data distribution; we also play a *strict game* in
# which the non-member has the same class as the member it replaces, which removes the
# easy cue of a wrong class. The adversary knows the task's labels.
#
# **The attacks** (sections IV-C and IV-D) reconstruct the attacked set by gradient
# matching {cite:p}`geiping2020inverting`, with the target as the prior: the slot under
# test starts at $x_0$, the other slots start as noise, and Adam minimises
# $1 - \cos(\hat g(x), g) + \lambda_{TV}\,\mathrm{TV}(x)$. The query attack takes
# $\hat g(x) = \nabla_\omega \mathcal{L}(\omega, x)$, approximating the adapted
# parameters by $\omega$ (eq. 9). The support attack is given the task's query set as
# well and simulates the whole task-learner: adapt $\omega$ on the candidate support set,
# then differentiate the query loss with respect to $\omega$ (eq. 10). A member should
# barely move away from its prior; a non-member is pulled towards the image that really
# sits in that slot. The score is $\mathrm{SSIM}(x_0, x^*)$ and the threshold $d$ is
# chosen on separate validation trials.

# %% tags=["parameters"]
dataset = "mnist"
ways = 3
shots = 1
seed = 0
profile = "quick"  # "quick" (CI, a few minutes) or "paper" (100 test and 100 validation trials per cell)
inner_lr = 0.1  # the task-learners' inner rate
run_dir = "../runs"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from mamlpriv import paper
from mamlpriv.attacks import QueryAttackConfig, SupportAttackConfig
from mamlpriv.data import load_dataset
from mamlpriv.experiments import ATTACK_NET, GameConfig, attack_runtime, evaluate_cell, play
from mamlpriv.maml import MAMLConfig
from mamlpriv.models import ConvNet, forward, init_params
from mamlpriv.plots import attack_samples
from mamlpriv.training import TrainConfig, meta_train, run_folder

PROFILES = {
    "quick": dict(trials=20, validation=20, train_iterations=300, epoch_iterations=100, stages=(0, 300),
                  grid=[(3, 1), (5, 1)], runtime_iterations=(50,), runtime_sizes=(3, 5), runtime_trials=4),
    "paper": dict(trials=100, validation=100, train_iterations=1000, epoch_iterations=100, stages=None,
                  grid=[(w, s) for w in (3, 5, 7) for s in (1, 2, 3)], runtime_iterations=(50, 100, 200),
                  runtime_sizes=(3, 5, 10, 15, 20), runtime_trials=8),
}
if profile not in PROFILES:
    raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
P = PROFILES[profile]
data = load_dataset(dataset, "test")  # tasks are drawn from images the meta-learner never trained on
maml = MAMLConfig(inner_lr, 1, False)
QUERY, SUPPORT = QueryAttackConfig(), SupportAttackConfig()
print("query attack:", QUERY)
print("support attack:", SUPPORT)


def trained_snapshots(w: int, s: int) -> dict:
    """Meta-train the attacked model (ATTACK_NET) and keep a snapshot per epoch; cached
    in run_dir."""
    cfg = TrainConfig(dataset=dataset, ways=w, shots=s, **ATTACK_NET, inner_lr=inner_lr, seed=seed,
                      iterations=P["train_iterations"], epoch_iterations=P["epoch_iterations"], eval_tasks=100)
    res = meta_train(cfg, out_dir=None if run_dir is None else run_folder(run_dir, cfg), progress=False)
    return res.snapshots, res.history


def cell(target: str, params: dict, w: int, s: int, game: str = "paper") -> dict:
    f = forward(ConvNet(w, **ATTACK_NET))
    return evaluate_cell(f, params, data, GameConfig(target, game, w, s, P["trials"], seed), maml,
                         QUERY if target == "query" else SUPPORT, validation_trials=P["validation"])

# %% [markdown]
# ## The attacked model and the training stage
#
# The paper attacks "commonly used meta-learning architectures" without naming one. We
# use the four-block convolutional network of MAML {cite:p}`finn2017maml` with 32
# filters, without normalisation (so that each image's gradient is its own), and with
# stride-2 convolutions in place of max-pooling, as Finn et al. do for 28x28 Omniglot
# images. The choice matters: with max-pooling the gradient of a random network is much
# harder to invert (from noise, the matching loss stalls near 0.3 and the
# reconstructions stay unrecognisable), and on 100 validation trials the query attack
# reached an AUC of 0.89 against 1.00 with strided convolutions; the max-pool searches
# are kept in the table of searched settings below (column `pool`).
#
# The query attack works best on an untrained model, where $\theta \approx \omega$ holds
# best (Figure 7 of the paper). The support attack needs the support images to matter
# for the shared gradient, which on an untrained network with a small inner rate they
# hardly do (see the previous chapter), so it is run on snapshots taken during
# meta-training and the stage is chosen **on validation trials only**.

# %% tags=["remove-stderr"]
snapshots, history = trained_snapshots(ways, shots)
stage_rows = []
for it, params in sorted(snapshots.items()):
    if P["stages"] is not None and it not in P["stages"]:
        continue
    r = cell("support", params, ways, shots)
    stage_rows.append({"meta-iteration": it, "validation accuracy": r["validation"]["accuracy"],
                       "validation AUC": r["validation"]["auc"], "test accuracy": r["metrics"]["accuracy"],
                       "test AUC": r["metrics"]["auc"]})
stages = pd.DataFrame(stage_rows).set_index("meta-iteration")
best_stage = int(stages["validation AUC"].idxmax())
print(f"support attack: best stage on validation trials = meta-iteration {best_stage}")
stages.round(3)

# %% [markdown]
# ## The headline cell
#
# Both attacks, both games, with the threshold calibrated on separate validation
# trials. Beside the accuracy, recall and precision that the paper reports we give the
# ROC AUC and the true-positive rate at 1% false positives, which show whether an attack
# is confident on some members or merely better than chance on average.

# %% tags=["remove-stderr"]
untrained = init_params(ConvNet(ways, **ATTACK_NET), seed=seed)
main = {}
for target, params, stage in (("query", untrained, 0), ("support", snapshots[best_stage], best_stage)):
    for game in ("paper", "strict"):
        main[(target, game)] = (cell(target, params, ways, shots, game), stage)
rows = []
for (target, game), (r, stage) in main.items():
    m = r["metrics"]
    ref = paper.PAPER_TABLES[target].get(dataset, {}).get((ways, shots))
    rows.append({"attack": target, "game": game, "stage": stage, "accuracy": m["accuracy"],
                 "recall": m["recall"], "precision": m["precision"], "AUC": m["auc"],
                 "TPR@1%FPR": m["tpr_at_1pct_fpr"], "TPR@10%FPR": m["tpr_at_10pct_fpr"],
                 "paper accuracy": ref[0] if ref and game == "paper" else None})
headline = pd.DataFrame(rows).set_index(["attack", "game"])
print(f"{P['trials']} test trials ({P['trials'] // 2} members) and {P['validation']} validation trials per row "
      f"({profile} profile)")
headline.round(3)

# %% [markdown]
# ### The same cell at paper scale
#
# The numbers above come from the profile this page was built with. The paper-scale run
# of this cell (100 test trials with 50 members, threshold from 100 separate validation
# trials, MNIST 3-way 1-shot; `scripts/headline_cells.py`) is stored in
# `results/attacks/` with its provenance and read back here:

# %%
import json
from pathlib import Path

stored = sorted(Path("../results/attacks").glob("headline-mnist-3w1s*.json"))
rows = []
for path in stored:
    res = json.loads(path.read_text())
    for c in res["cells"]:
        m = c["metrics"]
        ref = paper.PAPER_TABLES[c["target"]]["mnist"][(3, 1)]
        rows.append({"file": path.name, "attack": c["target"], "game": c["game"], "stage": c["stage"],
                     "restarts": c["attack"]["restarts"], "accuracy": round(m["accuracy"], 3),
                     "paper accuracy": ref[0] if c["game"] == "paper" else None, "AUC": round(m["auc"], 3),
                     "TPR@1%FPR": round(m["tpr_at_1pct_fpr"], 3), "commit": res["provenance"]["git_commit"][:8]})
pd.DataFrame(rows).set_index(["file", "attack", "game"]) if rows else print("no stored paper-scale results")

# %% [markdown]
# The attack settings were chosen on validation trials only (never on the test trials
# above); every setting tried is stored and shown here, best validation AUC first:

# %%
searched = []
for path in sorted(Path("../results/attacks").glob("search-*.json")):
    res = json.loads(path.read_text())
    target = "support" if "support" in path.name else "query"
    for r in res["rows"]:
        pool = res["provenance"]["args"].get("pool") or ("stride" if "stride" in res["setting"] else "max")
        searched.append({"attack": target, "pool": pool, "inner_lr": res["provenance"]["args"].get("inner_lr"),
                         **{k: v for k, v in r.items() if k != "seconds"}, "file": path.name})
searched = pd.DataFrame(searched)
searched.sort_values(["attack", "auc"], ascending=[True, False]).round(3) if len(searched) else None

# %% [markdown]
# At paper scale our query attack reaches a lower accuracy than the paper's 0.92 on this
# cell and our support attack a lower one than its 0.79 (see the table for the exact
# numbers and the AUC); the settings searched on validation trials are in
# `results/attacks/search-*.json`. Closing these gaps is open work.

# %% [markdown]
# ## Figure 4: what the attacks do
#
# Input (the target, used as the prior) and output (the reconstruction of its slot) for
# two member and two non-member targets of each attack, from the paper's game above.

# %%
def sample_rows(target: str):
    f = forward(ConvNet(ways, **ATTACK_NET))
    params = untrained if target == "query" else snapshots[best_stage]
    game = GameConfig(target, "paper", ways, shots, 8, seed)
    res = play(f, params, data, game, maml, QUERY if target == "query" else SUPPORT)
    pick = [i for i in range(8) if res.members[i]][:2] + [i for i in range(8) if not res.members[i]][:2]
    return [("member" if res.members[i] else "non-member", res.targets[i],
             res.reconstructions[i, res.slots[i]], float(res.scores[i])) for i in pick]


# %% mystnb={"figure": {"caption": "Sample runs of the query attack on the untrained model: the target image given to the attack (left) and the reconstruction of its slot (right), with the SSIM score. Members stay close to their prior; non-members are pulled towards the task's real image.", "name": "fig-attack-samples-query"}}
fig_q = attack_samples(sample_rows("query"), "query attack")
plt.show()

# %% mystnb={"figure": {"caption": "Sample runs of the support attack at its selected training stage, as in the previous figure.", "name": "fig-attack-samples-support"}}
fig_s = attack_samples(sample_rows("support"), "support attack")
plt.show()

# %% [markdown]
# ## Tables I and II: ways and shots
#
# Each cell is a separate membership game in the paper's setting (non-members from any
# class), its threshold calibrated on its own validation trials. The query attack runs on
# the untrained model, the support attack on the model meta-trained with those ways and
# shots, at the stage selected above for the headline cell. The paper's numbers are
# printed beside ours with the difference (ours minus the paper's). The quick profile
# runs only a few cells with few trials; the paper profile runs the whole grid.

# %% tags=["remove-stderr"]
grid_rows = []
for w, s in P["grid"]:
    snaps, _ = trained_snapshots(w, s)
    stage = best_stage if best_stage in snaps else max(snaps)
    for target, params in (("query", init_params(ConvNet(w, **ATTACK_NET), seed=seed)), ("support", snaps[stage])):
        m = cell(target, params, w, s)["metrics"]
        ref = paper.PAPER_TABLES[target].get(dataset, {}).get((w, s), (None,) * 3)
        row = {"attack": target, "ways": w, "shots": s}
        for name, ours, theirs in zip(("accuracy", "recall", "precision"), (m["accuracy"], m["recall"], m["precision"]), ref):
            row[name] = round(ours, 3)
            row[f"paper {name}"] = theirs
            row[f"Δ {name}"] = None if theirs is None else round(ours - theirs, 3)
        row["AUC"] = round(m["auc"], 3)
        grid_rows.append(row)
grid = pd.DataFrame(grid_rows).set_index(["attack", "ways", "shots"])
grid[["accuracy", "paper accuracy", "Δ accuracy", "recall", "paper recall", "precision", "paper precision", "AUC"]]

# %% [markdown]
# ## Tables III and IV: runtime
#
# Seconds per trial of each attack against the number of attack iterations and the
# size of the attacked set, with trials batched as in the games above, beside the
# paper's runtimes (a dual-core PC with 8 GB of RAM). `bench/attack_runtime.py` prints
# the full grid; the quick profile measures a corner of it.

# %%
rt_rows = []
for target in ("query", "support"):
    for it in P["runtime_iterations"]:
        for size in P["runtime_sizes"]:
            ours = attack_runtime(target, size, it, P["runtime_trials"], data, inner_lr)
            theirs = paper.PAPER_RUNTIMES[target][it][size]
            rt_rows.append({"attack": target, "iterations": it, "data size": size, "ours (s/trial)": round(ours, 3),
                            "paper (s)": theirs, "paper / ours": round(theirs / ours, 1)})
pd.DataFrame(rt_rows).set_index(["attack", "iterations", "data size"])

# %% [markdown]
# ## Where we fall short of the paper
#
# Every headline or grid cell whose accuracy is below the paper's, with our number:

# %%
short = [(f"{t} {w}-way {s}-shot", r["accuracy"], r["paper accuracy"])
         for (t, w, s), r in grid.iterrows() if r["paper accuracy"] is not None and r["accuracy"] < r["paper accuracy"]]
for name, ours, theirs in short:
    print(f"{name}: ours {ours:.3f}, paper {theirs:.2f}")
print(f"{len(short)} of {len(grid)} cells below the paper's accuracy")

# %%
# The query attack on the untrained model must beat chance clearly (a sanity check for nbval).
assert main[("query", "paper")][0]["metrics"]["auc"] > 0.6
