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
# # Stronger membership tests
#
# **What you will learn**
#
# - why a privacy measurement is only as good as its strongest attack, and how a
#   *ceiling* (an adversary given everything but the secret bit) brackets every
#   practical attack from above;
# - the *profile-likelihood* test: put the target back into the reconstruction, pin it,
#   and measure what that costs the gradient matching, written out in plain PyTorch;
# - how to read ROC curves on log-log axes and the true-positive rate at 1% and 0.1%
#   false positives, the numbers that matter when an attacker must be sure;
# - whether the support attack's near-chance AUC in the strict game comes from the
#   gradient (it holds little about the support set) or from the attack (it is weak);
# - why a test chosen on a hundred validation trials can mislead, and how a replication
#   on fresh data settles a rule adopted after seeing the results.
#
# ## The idea
#
# The previous chapter measured the paper's two attacks: gradient matching with the
# target as the prior, scored by the SSIM between the target and what its slot becomes.
# In the strict game, where a non-member has the class of the member it replaces, the
# support attack was close to chance in most cells. Two explanations fit: the shared
# gradient may say little about which same-class image sits in a support slot, or the
# SSIM of one reconstruction may be a poor way to read what it says. This chapter
# separates them, on the very trials of the paper's attack (same tasks, slots, targets,
# attacked model and attack start).
#
# **The ceiling.** Give the adversary everything except the bit: the rest of the task,
# the query set, $\omega$, and both candidate images of the slot, $x_0$ (member world)
# and $x_1$ (the image that sits there otherwise). It computes the task gradient of both
# worlds, $g_{in}$ and $g_{out}$, and asks which one the released $g$ is closer to:
#
# $$s_{ceiling} = \lVert g - g_{out} \rVert^2 - \lVert g - g_{in} \rVert^2 .$$
#
# Under isotropic Gaussian noise on $g$ this is, up to a constant factor, the
# log-likelihood ratio of the two worlds, the most powerful test there is
# (Neyman-Pearson); without noise it separates the worlds perfectly whenever their
# gradients differ. No attack on the same trials can beat it. It is not an attack: no
# real adversary knows the other images.
#
# **The profile likelihood** uses only what the paper's adversary holds ($\omega$, $g$,
# the labels; the query set for the support attack). Run the attack's gradient matching
# with every slot free, then put $x_0$ back into the target's slot of that solution, pin
# it there and let the other slots settle. A member's slot already held (something close
# to) $x_0$, so pinning it costs little; a non-member's pinned slot stops the batch from
# explaining $g$. The score is the difference of the two final matching losses:
#
# $$s_{profile} = \mathcal{L}_{free} - \mathcal{L}_{pinned} \quad (\approx 0 \text{ for a member}, < 0 \text{ otherwise}).$$
#
# **SSIM + profile** adds the two scores after standardising each with the mean and
# spread of the validation trials. Which practical test a cell reports (SSIM, profile or
# their sum) is chosen on its validation trials, as the attack's stage is; the test
# trials never see that choice.
#
# **Not among the tests: per-target calibration.** In the manner of LiRA
# {cite:p}`carlini2022membership` an adversary could attack shadow tasks of its own, with
# and without each target, fit a Gaussian to each world's scores and score by their
# likelihood ratio (`mamlpriv.scores.fit_gaussians` and `likelihood_ratio` do that
# part). It needs dozens of attacks per target, where every other test here needs one
# or two; on a CPU that is beyond the paper profile's budget, so it stays a tool for
# smaller studies.

# %% tags=["parameters", "remove-input"]
profile = "quick"  # "quick" (CI, a few minutes) or "paper" (100 test and 100 validation trials per cell)
results_dir = "../results"  # the runner's results: <results_dir>/<profile>/<experiment>/<cell>.json
# The grid; None takes the profile's value. Other values compute exactly those cells.
dataset = None  # "mnist" or "fashion-mnist"; None: both
shapes = None  # (ways, shots) pairs, e.g. "3 1 5 1"; None: the profile's grid of Tables I-II
trials = None  # test trials per cell (even); None: 20 (quick) or 100 (paper)
validation = None  # validation trials per cell (even); None: as trials

# %% tags=["remove-cell"]
from mamlpriv import pages

_params = pages.parameters(globals(), ["profile", "results_dir", "dataset", "shapes", "trials",
                                       "validation"]);

# %% tags=["remove-input"]
import time

from IPython.display import Markdown, display

# this page's execution time, printed at its end
_chapter_start = time.perf_counter()
display(Markdown(pages.summary(_params)))

# %% [markdown]
# Here is the pinned half of the profile likelihood in plain PyTorch. `match` is the
# attack's matching objective of a candidate batch `x` (one minus the cosine between
# its simulated gradient and $g$, plus the image prior), `x_free` the attack's
# reconstruction and `slot` the target's position. Adam never moves the pinned slot,
# because its gradient is zeroed before every step (and Adam starts with zero moments):

# %%
import torch


def pinned_loss(match, x_free, x0, slot, steps=50, lr=0.03):
    x = x_free.clone()
    x[slot] = x0  # the target back in its slot ...
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        match(x).backward()
        x.grad[slot] = 0  # ... and pinned there
        opt.step()
    return match(x).item()


# profile score = match(x_free) - pinned_loss(match, x_free, x0, slot)

# %% [markdown]
# The library runs this for a hundred trials at once (`mamlpriv.scores.pinned_losses`,
# with a cosine-decayed rate of 0.3 times the attack's for 50 steps). Starting the
# pinned run from the free solution rather than from fresh noise matters: both runs
# end in the same basin, so their difference measures the pin and not the luck of two
# optimisations.
#
# ## The measurement
#
# Every cell of Tables I-II (both data sets, 3, 5 and 7 ways, 1 to 3 shots, both
# attacks and both games) is played again with all four tests scored on the same
# trials. The table gives, per cell and game, the test AUC of SSIM, the test chosen on
# validation trials with its AUC, their difference with a paired-bootstrap 95% interval
# (the same trials resampled for both tests) and the true-positive rate at 1% false
# positives of the chosen test. The ceiling of every cell is drawn in the second figure.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd

from mamlpriv import catalog, report, strength
from mamlpriv.plots import PAGE_WIDTH, auc_dumbbells, legend_above, roc_loglog

grid = pages.shape_pairs("shapes", shapes)
knobs = pages.grid_knobs(
    datasets=pages.as_tuple("dataset", dataset, str),
    grid=grid,
    trials=trials,
    validation=validation,
)
records = pages.shown("stronger-tests", profile, results_dir, **knobs)
rows = strength.strength_rows(records)
names = {k: v[0] for k, v in strength.TESTS.items()}


def comparison_table(rows, attack, test_column="best (AUC)"):
    table = {}
    for r in rows:
        if r["attack"] != attack:
            continue
        key = (r["dataset"], r["ways"], r["shots"])
        entry = table.setdefault(key, {})
        g = "paper's game" if r["game"] == "paper" else "strict game"
        entry[(g, "SSIM")] = f"{r['ssim_auc']:.2f}"
        entry[(g, test_column)] = f"{strength.SHORT[r['best']]} {r['best_auc']:.2f}"
        entry[(g, "Δ AUC [95%]")] = (
            f"{r['gain']:+.2f} [{r['gain_lo']:+.2f}, {r['gain_hi']:+.2f}]"
            if r["best"] != "ssim"
            else "·"
        )
        entry[(g, "TPR@1%")] = f"{r['best_tpr1']:.2f}"
    df = pd.DataFrame.from_dict(table, orient="index")
    df.index = pd.MultiIndex.from_tuples(
        df.index, names=["dataset", "ways", "shots"]
    )
    return df.sort_index()


for attack in ("support", "query"):
    display(
        Markdown(
            f"**{attack.capitalize()} attack** (test AUC; `·`: SSIM was chosen):"
        )
    )
    display(comparison_table(rows, attack))

# %% [markdown]
# ROC curves tell more than an AUC. On log-log axes the low false-positive corner, where
# an attacker who must be sure operates, fills most of the plot; a curve on the dashed
# diagonal is guessing. With 50 non-members per game the smallest false-positive rate a
# test can show is 2%.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "ROC curves on log-log axes of every test on the same 100 test trials, strict game, at the headline task shape (MNIST 3-way 1-shot): the query attack on the untrained network (left) and the support attack on the meta-trained one (right). Grey: SSIM, the paper's score; blue: profile likelihood; orange: SSIM + profile; black dotted: the ceiling, whose adversary is given the other images of the task. Points at zero rate sit on the axes' lower or left edge.", "name": "fig-strength-roc"}}
head = {
    (r["config"]["target"]): r
    for r in records
    if (r["config"]["dataset"], r["config"]["ways"], r["config"]["shots"])
    == ("mnist", 3, 1)
}
if not head:  # a rerun on other shapes: the first cell of each attack
    head = {r["config"]["target"]: r for r in reversed(records)}
fig, axes = plt.subplots(
    1, len(head), figsize=(PAGE_WIDTH * 0.45 * len(head), 3.8), squeeze=False
)
for ax, attack in zip(axes[0], sorted(head)):
    rec = head[attack]
    c = rec["config"]
    res = rec["result"]["strict"]
    curves = {
        t: strength.roc(res, t) for t in ("ssim", "profile", "combined", "ceiling")
    }
    roc_loglog(
        curves,
        ax=ax,
        labels=names,
        title=f"{c['dataset']} {c['ways']}-way {c['shots']}-shot, {attack} attack",
    )
axes[0][0].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# The whole grid at a glance: one line per cell from its weakest to its strongest test.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Test AUC of every test in every support-attack cell: the paper's game (left) and the strict game (right). Grey circle: SSIM; blue square: profile likelihood; orange triangle: SSIM + profile; black cross: the ceiling. The dashed line is chance.", "name": "fig-strength-grid"}}
support = sorted(
    (r for r in rows if r["attack"] == "support"),
    key=lambda r: (r["dataset"], r["ways"], r["shots"]),
)
games = [g for g in ("paper", "strict") if any(r["game"] == g for r in support)]
fig, axes = plt.subplots(
    1,
    len(games),
    figsize=(PAGE_WIDTH, 0.3 * len(support) / len(games) + 1.6),
    sharey=True,
    squeeze=False,
)
for ax, g in zip(axes[0], games):
    auc_dumbbells(
        [r for r in support if r["game"] == g],
        ("ssim", "profile", "combined", "ceiling"),
        ax=ax,
        labels=names,
        title="paper's game" if g == "paper" else "strict game",
    )
legend_above(fig, axes[0][0], ncol=4, top=0.93)
plt.show()

# %% [markdown]
# Which test each cell chose, and why: the validation AUC of every practical test,
# support attack, strict game (the choice is the row's highest; SSIM wins ties).

# %% tags=["hide-input"]
def variant_table(chosen_rows, index):
    return pd.DataFrame(
        [
            {
                **{k: r[k] for k in index},
                **{
                    names[t].split(" (")[0]: round(r[f"{t}_val_auc"], 2)
                    for t in ("ssim", "profile", "combined")
                },
                "chosen": names[r["best"]].split(" (")[0],
            }
            for r in chosen_rows
        ]
    ).set_index(index)


display(
    variant_table(
        [r for r in support if r["game"] == "strict"], ["dataset", "ways", "shots"]
    )
)

# %% [markdown]
# The same for every attack, game and cell (click to open):

# %% tags=["hide-input", "hide-output"]
order = ["attack", "game", "dataset", "ways", "shots"]
with pd.option_context("display.max_rows", None):  # every row
    display(variant_table(sorted(rows, key=lambda r: [r[k] for k in order]), order))

# %% [markdown]
# ## The questions, answered
#
# The paper stops at SSIM, so these are our own questions, decided by stated rules with
# the book's verdict words: (1) at MNIST 3-way 1-shot, support attack, strict game, does
# the best practical test reach an AUC of 0.85 (its 95% interval at or above 0.85:
# CONFIRMED; wholly below: NOT CONFIRMED; else INCONCLUSIVE)? (2) Is it above SSIM in
# at least 14 of the 18 support cells of the strict game (the same share of a smaller
# grid)? (3) Is it never worse than SSIM in a query cell (a paired interval below zero
# would say it is)?

# %% tags=["hide-input"]
claims = strength.strength_claims(rows)
display(
    Markdown(
        "\n".join(
            f"- **{c['verdict']}**: {c['claim']}. Ours: {c['ours']}."
            for c in claims
        )
    )
)

# %% tags=["hide-input"]
answer = strength.gradient_or_attack(rows)
if answer:
    display(Markdown(answer))

# %% [markdown]
# ## One test for the whole grid
#
# Question (2) missed its target, and the per-cell choice is part of the reason: 100
# validation trials cannot tell apart tests whose AUCs differ by a few hundredths, so a
# cell can switch to a test that then does worse on its test trials. A steadier rule
# chooses once per attack and game: the practical test with the highest validation AUC
# averaged over all 18 cells of the grid, 1,800 validation trials in all. The test
# trials still never see the choice.
#
# We adopted this grid rule *after* the per-cell rule had missed and after we had seen
# the test AUCs. On these cells it is therefore exploratory: the numbers below carry no
# verdict. The verdict comes from fresh data in the next section.

# %% tags=["hide-input"]
choice = strength.grid_choice(records)
means = strength.grid_validation(records)
pooled = pd.DataFrame(
    [
        {
            "attack": a,
            "game": "paper's game" if g == "paper" else "strict game",
            **{strength.SHORT[t]: f"{v:.4f}" for t, v in means[a, g].items()},
            "chosen": strength.SHORT[choice[a, g]],
        }
        for a, g in sorted(means)
    ]
).set_index(["attack", "game"])
display(Markdown("Mean validation AUC over the grid, and the grid rule's choice:"))
display(pooled)
if ("support", "strict") in means:
    ranked = sorted(means["support", "strict"].items(), key=lambda kv: -kv[1])
    first, second = ranked[:2]
    display(
        Markdown(
            f"For the support attack in the strict game the choice is narrow: "
            f"{strength.TESTS[first[0]][0]} {first[1]:.4f} against "
            f"{strength.TESTS[second[0]][0]} {second[1]:.4f}, a near tie. It is a "
            "choice all the same, and the replication below keeps it fixed."
        )
    )
grid_rows = strength.strength_rows(records, choose=choice)
display(
    Markdown(
        "\n".join(
            f"- exploratory, not a verdict: {c['claim']}. Under the grid rule: "
            f"{c['ours']}."
            for c in strength.strength_claims(grid_rows)
        )
    )
)

# %% [markdown]
# ## A replication on fresh data
#
# The replication plays the 18 support cells again in the strict game with everything
# new: a model meta-trained afresh and new validation and test trials (seed 1 instead
# of 0). Each cell attacks the training stage its seed-0 cell chose on validation
# trials. The test is fixed before any of these cells was computed: the grid rule's
# choice for the support attack in the strict game on the seed-0 cells, above. Questions
# (1) and (2) are asked again of these cells, with the same rules.

# %% tags=["hide-input"]
replication = pages.shown(
    "stronger-tests-replication", profile, results_dir, compute=False, **knobs
)
planned = catalog.stronger_tests_replication("paper", **knobs).cells
if replication:
    test, rep_rows, rep_claims = strength.replication_claims(
        records, replication, expected=len(planned)
    )
    display(
        Markdown(
            "\n".join(
                f"- **{c['verdict']}**: {c['claim']}. Fresh data, "
                f"{strength.TESTS[test][0]} against SSIM: {c['ours']}."
                for c in rep_claims
            )
        )
    )
    above: dict[str, list[bool]] = {}
    for r in rep_rows:
        above.setdefault(r["dataset"], []).append(r["best_auc"] > r["ssim_auc"])
    counts = [f"{d} {sum(v)} of {len(v)}" for d, v in sorted(above.items())]
    display(
        Markdown(
            f"{strength.TESTS[test][0]} above SSIM, by data set: "
            + "; ".join(counts) + "."
        )
    )
    display(comparison_table(rep_rows, "support", "fixed test (AUC)"))
else:
    display(Markdown(f"No replication cell is stored yet (0 of {len(planned)})."))

# %% [markdown]
# ## Where these numbers come from

# %% tags=["hide-input"]
display(
    Markdown(
        "- " + pages.where_from(records, "Stronger-tests cells") + "\n"
        "- " + pages.where_from(replication, "Replication cells") + "\n"
        f"- This page took {time.perf_counter() - _chapter_start:.0f} s to execute."
    )
)

# %% [markdown]
# ## Takeaways
#
# - Without noise the ceiling separates the two worlds in every cell shown: the shared
#   gradient pins down which image sat in a slot, for the support set as for the query
#   set, once everything else is known. Privacy here rests on the adversary's ignorance
#   of the rest of the task, not on the gradient being uninformative.
# - A better-read score closes only a small part of the gap: pinning the target (the
#   profile likelihood), alone or added to SSIM, often reads more out of the same
#   reconstruction than SSIM alone, but a choice made on 100 validation trials can also
#   pick a test that does worse on the test trials (a negative Δ AUC in the tables); the
#   questions above count both.
# - A choice among close tests made on 100 validation trials is itself noisy. Choosing
#   once for the whole grid is steadier, but a rule adopted after seeing the results
#   proves nothing on those results: on fresh data (the replication) the grid rule's test
#   fell short of the count it had seemed to reach. Adding the profile likelihood to SSIM
#   helps a little in most cells, rarely by more than 100 test trials can resolve.
# - Judge membership tests by their ROC at low false-positive rates, not by accuracy at
#   one threshold: the tests here differ most in that corner.
# - The defence chapter's conclusions rest on the paper's attack; a defence that stops
#   SSIM is not thereby shown to stop the ceiling's adversary.

# %% tags=["remove-cell"]
# sanity check for nbval: every shown cell has all tests and every claim a verdict
assert rows and all({"ssim_auc", "ceiling_auc", "best"} <= set(r) for r in rows)
assert {c["verdict"] for c in claims} <= set(report.VERDICTS)
