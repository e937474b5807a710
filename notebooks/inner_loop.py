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
# # Sensitivity IV, beyond the paper: the inner loop
#
# The second-order task gradient is $(I - \alpha H_s)\nabla\mathcal{L}_q(\theta')$ for one
# inner step (a product of such factors for several): the inner learning rate $\alpha$
# and the number of inner steps set how much weight the support set's Hessian has in
# what a task-learner shares, and how far $\theta'$ moves towards the support images.
# {cite:t}`rafiei2024privacy` fix both; here we vary them: the inner rate over two
# decades (0.01 to 1.0, one step) and the steps (1, 2, 5, rate 0.1), MNIST 3-way 1-shot,
# paper's game. The point at rate 0.1 with one step is the Tables I-II cell. The support
# attack attacks a network meta-trained with the same inner loop, at the stage its cell
# selected on validation trials; the last column gives that network's meta-test accuracy,
# so a setting that leaks more can be told apart from one that merely trains worse.

# %% tags=["parameters"]
profile = "quick"  # "quick" (CI: rate 0.3 and 2 steps) or "paper" (rates 0.01-1.0, steps 1-5, 100+100 trials)
results_dir = "../results"

# %%
import matplotlib.pyplot as plt
import pandas as pd

from mamlpriv import catalog, runner
from mamlpriv.plots import finish_accuracy, metric_curve
from mamlpriv.report import membership_rows, sweep_sentence

if profile not in runner.PROFILES:
    raise ValueError(f"profile must be one of {runner.PROFILES}, got {profile!r}")
twin = [r for r in catalog.shown(catalog.tables_1_2, profile, results_dir)
        if r["config"]["dataset"] == "mnist" and (r["config"]["ways"], r["config"]["shots"]) == (3, 1)]
loop = pd.DataFrame(membership_rows(catalog.shown(catalog.inner_loop, profile, results_dir) + twin, games=("paper",)))

# %% [markdown]
# ## Leakage against the inner rate and the inner steps
#
# AUC (threshold-free) with its bootstrap 95% band.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
for attack in ("query", "support"):
    sel = loop[(loop.attack == attack) & (loop.inner_steps == 1)]
    metric_curve(sel.to_dict("records"), "inner_lr", "auc", ax=ax1, label=f"{attack} attack")
    sel = loop[(loop.attack == attack) & (loop.inner_lr == catalog.INNER_LR)]
    metric_curve(sel.to_dict("records"), "inner_steps", "auc", ax=ax2, label=f"{attack} attack")
ax1.set_xscale("log")
finish_accuracy(ax1, "AUC against the inner learning rate (1 step)")
finish_accuracy(ax2, f"AUC against inner steps (rate {catalog.INNER_LR})")
fig.tight_layout()
plt.show()

# %%
keep = ["attack", "inner_lr", "inner_steps", "stage", "accuracy", "accuracy_lo", "accuracy_hi", "auc", "auc_lo",
        "auc_hi", "learning_acc", "trials", "profile"]
loop[keep].sort_values(["attack", "inner_steps", "inner_lr"]).set_index(["attack", "inner_steps", "inner_lr"]).round(3)

# %% [markdown]
# ## What the numbers say
#
# Per attack, the AUC at each inner rate (one step) and at each number of inner steps
# (rate 0.1), and where it is highest; the meta-test accuracy of the attacked network is
# in the table above (the query attack runs on the untrained network, so it has none).

# %%
for attack in ("query", "support"):
    a = loop[loop.attack == attack]
    print(f"{attack} attack, AUC by inner rate: {sweep_sentence(a[a.inner_steps == 1].to_dict('records'), 'inner_lr')}")
    print(f"{attack} attack, AUC by inner steps: "
          f"{sweep_sentence(a[a.inner_lr == catalog.INNER_LR].to_dict('records'), 'inner_steps')}")

# %%
# sanity check for nbval: both knobs have at least two points for each attack
assert all(loop[(loop.attack == a) & (loop.inner_steps == 1)].inner_lr.nunique() >= 2 for a in ("query", "support"))
assert all(loop[(loop.attack == a) & (loop.inner_lr == catalog.INNER_LR)].inner_steps.nunique() >= 2
           for a in ("query", "support"))
