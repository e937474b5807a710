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
# # What the shared gradient contains
#
# **What you will learn**
#
# - how the second-order gradient splits into a query part and a support correction, and how large each is during meta-training;
# - how much the gradient changes when one support image or one query image is swapped, and what that does and does not say about the attacks;
# - why Proposition 3.1 (many tasks give the same gradient) does not stop membership inference.
#
# ## The idea
#
# Section III of {cite:t}`rafiei2024privacy` argues from the form of the MAML gradient
# that the query set leaks more than the support set, and its Proposition 3.1 says that
# the gradient need not determine the task's data at all. This chapter measures both
# claims. For one inner step the shared gradient splits into two parts,
#
# $$ g = \underbrace{\nabla_\theta \mathcal{L}(\theta_1, D^q)}_{\text{query part } = g_{FO}}
#   \; \underbrace{-\, \alpha H^s(\omega)\, \nabla_\theta \mathcal{L}(\theta_1, D^q)}_{\text{support correction}}, $$
#
# and with $k$ steps the correction collects all the Hessian terms of the product
# $\prod_j (I - \alpha H^s(\theta_j))$. `mamlpriv.analysis.decompose` computes both parts
# with Hessian-vector products only. The support set reaches $g$ in two ways: through
# the Hessians of the correction and through the adapted point $\theta_1$ at which the
# query part is taken. First-order MAML keeps only the second way.
#
# ```{admonition} Two corrections to the paper's formulas
# :class: note
# The paper writes the one-step factor as $I + H$ (eqs. 6 and 8 and the appendix). One
# step of gradient *descent* at rate $\alpha$ gives $\theta_1 = \omega - \alpha\nabla
# \mathcal{L}$, whose Jacobian is $I - \alpha H$. And the Hessian of the appendix's
# single-neuron loss (its eq. 13) is not the derivative of its gradient (eq. 11): on a
# sample where the neuron is active the Hessian is $2\begin{bmatrix}x^2 & x\\ x & 1
# \end{bmatrix}$, independent of the label, whereas eq. 13 depends on $y$ and is not
# symmetric. The library uses the corrected forms; the test suite checks them against
# `torch.func.hessian` and against autograd through the whole inner loop.
# ```

# %% tags=["parameters", "remove-input"]
dataset = "mnist"
ways = 5
shots = 1
iterations = None  # meta-iterations of the analysed runs; None takes the profile's default
seed = 0
profile = "quick"  # "quick" or "paper"
inner_lr = 0.4
results_dir = "../results"  # the runner's results: <results_dir>/<profile>/<experiment>/<cell>.json

# %% tags=["remove-cell"]
from mamlpriv import pages

_params = pages.parameters(globals(), ["dataset", "ways", "shots", "iterations", "seed", "profile",
                                       "inner_lr", "results_dir"]);

# %% tags=["remove-input"]
import time

from IPython.display import Markdown, display

# this page's execution time, printed at its end
_chapter_start = time.perf_counter()
display(Markdown(pages.summary(_params)))

# %% tags=["remove-stderr", "hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from mamlpriv import analysis, report
from mamlpriv.plots import PAGE_WIDTH, PALETTE, integer_ticks

# the measurements of this page: one cell of the runner's gradient-anatomy experiment
(record,) = pages.shown(
    "gradient-anatomy",
    profile,
    results_dir,
    paper_points=iterations is None,  # another length: computed exactly, here
    dataset=dataset,
    ways=ways,
    shots=shots,
    seed=seed,
    inner_lr=inner_lr,
    iterations=iterations,
)
cell, measured = record["config"], record["result"]
RUN_COLORS = {
    "second-order": PALETTE["second order"],
    "first-order": PALETTE["first order"],
}

# %% [markdown]
# ## The models
#
# Second- and first-order MAML, one inner step: the first two runs of the previous
# chapter (the same cached runs; `mamlpriv.cells.AnatomyCell` lists what is measured on
# them). Parameters were saved every 100 meta-iterations; the analysis below runs on
# snapshots spaced by the profile's `maml_epoch`, on held-out tasks from the test split.

# %% [markdown]
# ## How large is the support correction?
#
# For every snapshot we compute, per task, the share of the support correction in the
# gradient, $\lVert g - g_{FO}\rVert / \lVert g\rVert$, and the cosine between $g$ and
# $g_{FO}$. For the first-order run the same decomposition measures what its shared
# gradient leaves out.

# %% tags=["hide-input"]
decomp = pd.DataFrame(measured["decomposition"]).rename(
    columns={
        "support_share": "support share",
        "support_share_sd": "support share sd",
        "cos_fo": "cos(g, g_FO)",
        "g_norm": "|g|",
    }
)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Anatomy of the second-order task gradient over meta-training (held-out tasks, one inner step), for the snapshots of the second-order run (teal) and of the first-order run (orange). Left: norm of the support (Hessian) correction relative to the whole gradient, mean and one standard deviation over tasks. Right: cosine between the second-order gradient and its query part, the first-order gradient.", "name": "fig-anatomy-decomposition"}}
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.4))
for run, d in decomp.groupby("run"):
    color = RUN_COLORS[run]
    share, sd = d["support share"], d["support share sd"]
    axes[0].plot(
        d["iteration"], share, marker="o", ms=3, color=color, label=f"{run} run"
    )
    axes[0].fill_between(
        d["iteration"], share - sd, share + sd, color=color, alpha=0.2
    )
    axes[1].plot(
        d["iteration"],
        d["cos(g, g_FO)"],
        marker="o",
        ms=3,
        color=color,
        label=f"{run} run",
    )
axes[0].set_ylabel(r"$\|g - g_{FO}\| / \|g\|$")
axes[1].set_ylabel(r"$\cos(g, g_{FO})$")
for ax in axes:
    ax.set_xlabel("meta-iteration")
    integer_ticks(ax)
    ax.grid(alpha=0.3)
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0, 1, 0.92))
plt.show()

# %% tags=["hide-input"]
decomp.pivot(
    index="iteration", columns="run", values=["support share", "cos(g, g_FO)"]
).round(3)

# %% [markdown]
# ## How much does the gradient depend on each set?
#
# The decomposition says how large the Hessian term is, not how much it tells. A more
# direct measure: replace one set of a task and see how much the shared gradient moves.
# For each held-out task we swap its support set (or its query set) for other images of
# the same classes, for images of other classes, or for uniform noise, keeping the
# labels, and report the cosine between the original and the new gradient. A cosine
# near 1 means the gradient hardly depends on that set, so an attacker who matches
# gradients has little to go on.

# %% tags=["hide-input"]
swaps = pd.DataFrame(measured["swaps"]).rename(columns={"set": "swapped set"})

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Cosine between a task's shared gradient and the gradient after replacing its support set (purple) or its query set (red) by other images of the same classes (solid), of other classes (dashed) or by noise (dotted), over meta-training, for the gradient that each run shares. Lower means the gradient depends more on that set.", "name": "fig-anatomy-swaps"}}
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6), sharey=True)
set_colors = {
    "support": PALETTE["support attack"],
    "query": PALETTE["query attack"],
}
styles = dict(zip(analysis.SWAPS, ("-", "--", ":")))
for ax, (run, d) in zip(axes, swaps.groupby("run", sort=False)):
    for (which, kind), e in d.groupby(["swapped set", "replacement"]):
        ax.plot(
            e["iteration"],
            e["cosine"],
            color=set_colors[which],
            ls=styles[kind],
            marker="o",
            ms=3,
            label=f"{which} ← {kind}",
        )
    ax.set_title(f"{run} MAML", fontsize=10)
    ax.set_xlabel("meta-iteration")
    integer_ticks(ax)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("cos(g, g after swap)")
handles, labels = axes[0].get_legend_handles_labels()
# one legend column per swapped set, the replacements in the order of SWAPS
order = sorted(
    range(len(labels)),
    key=lambda i: (
        labels[i].split(" ← ")[0],
        analysis.SWAPS.index(labels[i].split(" ← ")[1]),
    ),
)
fig.legend(
    [handles[i] for i in order],
    [labels[i] for i in order],
    loc="upper center",
    ncol=2,
    fontsize=8,
    frameon=False,
)
fig.tight_layout(rect=(0, 0, 1, 0.86))
plt.show()

# %% tags=["hide-input"]
final = swaps[swaps["iteration"] == swaps["iteration"].max()]
final.pivot_table(
    index=["swapped set", "replacement"], columns="run", values="cosine"
).round(3)

# %% [markdown]
# ## The inner learning rate and the number of inner steps
#
# The support set acts on $g$ through $\alpha$: with $\alpha \to 0$ the adapted point is
# $\omega$ itself and the gradient forgets the support set entirely. On the final
# second-order model we vary $\alpha$ and $k$ (the model was trained with
# $\alpha = $ `inner_lr` and $k = 1$) and report the support share of the decomposition
# and the swap cosines for other images of the same classes, the hardest case for an
# attacker.

# %% tags=["hide-input"]
sweep = pd.DataFrame(measured["sweep"]).rename(
    columns={
        "support_share": "support share",
        "cos_support_swap": "cos support swap",
        "cos_query_swap": "cos query swap",
    }
)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final second-order model: support share of the gradient (left) and cosine after swapping the support set (middle) or the query set (right) for other images of the same classes, against the inner learning rate (log scale), for several numbers of inner steps k (darker: more steps).", "name": "fig-anatomy-sweep"}}
fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH, 3.2))
steps = sorted(set(sweep["k"]))
shades = plt.cm.viridis(
    [0.15 + 0.6 * i / max(1, len(steps) - 1) for i in range(len(steps))]
)
titles = ("support share", "cos, support swapped", "cos, query swapped")
for (k, d), color in zip(sweep.groupby("k"), shades[::-1]):
    for ax, col in zip(
        axes, ("support share", "cos support swap", "cos query swap")
    ):
        ax.plot(d["alpha"], d[col], marker="o", ms=3, color=color, label=f"k={k}")
for ax, title in zip(axes, titles):
    ax.set_title(title, fontsize=10)
    ax.set_xscale("log")
    ax.set_xticks(
        cell["sweep_lrs"], [f"{a:g}" for a in cell["sweep_lrs"]], fontsize=8
    )
    ax.minorticks_off()
    ax.set_xlabel(r"inner rate $\alpha$")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Which set does the gradient depend on more?
#
# The paper argues (section III-C) that the query set leaks more, because it enters $g$
# through a gradient while the support set enters only through a Hessian. That is half
# of the picture: the support set also fixes the point $\theta_1$ at which the query
# gradient is taken, and when $\alpha \lVert H \rVert$ is not small the Hessian term can
# carry as much of $g$ as the query part (see the support share above). The table
# compares, for the final models of this run, how far each swap moves the shared
# gradient (lower cosine = more dependence), replacement by replacement.

# %% tags=["hide-input"]
rows = []
for run in RUN_COLORS:
    mine = final[final["run"] == run]
    for kind in analysis.SWAPS:
        swapped = mine[mine["replacement"] == kind].set_index("swapped set")[
            "cosine"
        ]
        c_s, c_q = float(swapped["support"]), float(swapped["query"])
        rows.append(
            {
                "run": run,
                "replacement": kind,
                "cos after support swap": round(c_s, 3),
                "cos after query swap": round(c_q, 3),
                "g depends more on": "query set" if c_q < c_s else "support set",
            }
        )
pd.DataFrame(rows).set_index(["run", "replacement"])

# %% tags=["hide-input"]
k1 = sweep[sweep["k"] == 1]
lo, hi = k1.iloc[0], k1.iloc[-1]
display(
    Markdown(
        "With one inner step, the cosine after a same-class support swap is "
        f"{lo['cos support swap']:.3f} at α = {lo['alpha']:g} and "
        f"{hi['cos support swap']:.3f} at α = {hi['alpha']:g}; after a "
        f"query swap it goes from {lo['cos query swap']:.3f} to "
        f"{hi['cos query swap']:.3f}."
    )
)

# %% [markdown]
# ### And on the network the attacks target?
#
# The runs above use the book's MAML network (GroupNorm, inner rate 0.4). The attacks of
# the next chapters target another one: 32 channels without normalisation, strided
# convolutions, 3-way 1-shot tasks, inner rate 0.1. The same swaps measured there, on the
# untrained network the query attack works on, answer whether the finding above carries
# over to the attacked setting:

# %% tags=["hide-input"]
attack_cos = {
    (r["set"], r["replacement"]): r["cosine"] for r in measured["attack_swaps"]
}
attack_rows = []
for kind in analysis.SWAPS:
    c_s, c_q = attack_cos[("support", kind)], attack_cos[("query", kind)]
    attack_rows.append(
        {
            "replacement": kind,
            "cos after support swap": round(c_s, 3),
            "cos after query swap": round(c_q, 3),
            "g depends more on": "query set" if c_q < c_s else "support set",
        }
    )
attack_swaps = pd.DataFrame(attack_rows).set_index("replacement")
more = attack_swaps["g depends more on"].value_counts().to_dict()
display(
    Markdown(
        f"On the attacked network ({cell['tasks']} test tasks, inner rate "
        f"{cell['attack_inner_lr']}), the shared gradient depends more on the "
        "query "
        f"set for {more.get('query set', 0)} of {len(attack_swaps)} kinds of "
        "replacement and more "
        f"on the support set for {more.get('support set', 0)}."
    )
)
attack_swaps

# %% [markdown]
# **The paper's claim, decided.** Per network, a paired rule on the per-task cosines:
# for every kind of replacement, the mean over tasks of (cosine after a support swap
# minus cosine after a query swap) must have a 95% interval above zero for CONFIRMED
# (a query swap moves the gradient more); an interval below zero for any kind gives NOT
# CONFIRMED; anything else is INCONCLUSIVE. The network the attacks target is the
# paper's setting; the MAML chapter's trained network goes beyond it.

# %% tags=["hide-input"]
claims = report.query_set_claims([record])
where = [c["claim"].removeprefix(report.ANATOMY_CLAIM + " on ") for c in claims]
display(
    Markdown(
        "\n".join(
            f"- **{c['verdict']}** on {w}: {c['ours']} (mean ± 95% half-width per "
            "replacement)."
            for c, w in zip(claims, where)
        )
    )
)

# %% [markdown]
# This is how the two chapters fit together: which set the gradient depends on more is a
# property of the network and of the inner loop, not of MAML as such. With a large inner
# rate and a trained, normalised network the support correction is as large as the
# whole gradient, and which swap moves the gradient more depends on the replacement; on
# the attacked network, untrained and with the small inner rate of the attack
# experiments, the query set wins for every replacement, and the query attack, which
# reads the query part directly (eq. 9), is the stronger attack there (next chapter).

# %% [markdown]
# ## The appendix counterexample: different tasks, one gradient
#
# Proposition 3.1 states that if, for some other support set $M^s$, the matrix
# $A = I - \alpha H(\omega; M^s)$ is invertible and $g' = A^{-1} g$ has no zero entry,
# then a query set $M^q$ exists such that $(M^s, M^q)$ produces exactly the shared
# gradient $g$ of the real task. The appendix instantiates it on a single ReLU neuron,
# $\hat y = \mathrm{ReLU}(a x + b)$ with squared error. The construction of
# `mamlpriv.counterexample` follows the paper's reconstruction argument: at the adapted
# parameters $\theta' = (a', b')$ of $M^s$, one active query sample has gradient
# $2(a'x_q + b' - y_q)\,[x_q, 1]$, so the ratio of the two entries of $g'$ is the query
# input, $x_q = g'_a / g'_b$, and the bias entry gives the label.

# %% tags=["hide-input"]
def pair(values, digits):
    """A pair of numbers as text: (0.80, 0.30)."""
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in values) + ")"


w = torch.tensor([0.8, 0.3], dtype=torch.float64)
alpha = 0.1
D_s = (
    torch.tensor([1.0, 2.0], dtype=torch.float64),
    torch.tensor([0.5, 1.0], dtype=torch.float64),
)
D_q = (
    torch.tensor([1.5], dtype=torch.float64),
    torch.tensor([2.0], dtype=torch.float64),
)
g = analysis.maml_gradient_autograd(w, alpha, D_s, D_q)
x_grid = torch.linspace(-3, 3, 121, dtype=torch.float64)
family = analysis.alternative_task_family(w, alpha, D_s, D_q, x_grid, support_y=0.0)
ok = [m for m in family if m.ok]
reasons = pd.Series(
    [m.failure for m in family if not m.ok], dtype=str
).value_counts()
# every accepted member, checked by autograd through the whole inner loop
errors = torch.stack(
    [
        (analysis.maml_gradient_autograd(w, alpha, m.support, m.query) - g)
        .abs()
        .max()
        for m in ok
    ]
)
why = ", ".join(f"{name} ({n})" for name, n in reasons.items()) or "none"
display(
    Markdown(
        f"- shared gradient of the real task: g = {pair(g.tolist(), 6)}\n"
        f"- {len(ok)} of {len(family)} one-sample support sets `M_s = (x_s, 0)` "
        "admit a matching query set; the largest `|g(M) - g(D)|` over them is "
        f"{float(errors.max()):.2e}\n"
        f"- why the others fail: {why}"
    )
)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "A family of tasks that share one MAML gradient on the single-neuron network of the appendix. Each alternative support set holds one sample (x_s, 0); the constructed one-sample query set (x_q, y_q) is plotted against x_s. Every plotted task produces the same gradient as the real task (whose support inputs are marked by dotted lines), checked by autograd. The vertical axis is clipped to the range of most points: near the right edge of the family x_q runs off, and the points beyond the range are drawn as triangles on its edge.", "name": "fig-anatomy-family"}}
xs_ok = [float(m.support[0][0]) for m in ok]
x_q = [float(m.query[0][0]) for m in ok]
y_q = [float(m.query[1][0]) for m in ok]
values = torch.tensor(x_q + y_q)
lo, hi = float(values.quantile(0.05)), float(values.quantile(0.95))
pad = 0.3 * (hi - lo)
lo, hi = lo - pad, hi + pad
fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.75, 3.6))
for ys, color, label in (
    (x_q, "#4d4d4d", r"query input $x_q$"),
    (y_q, "#b8860b", r"query label $y_q$"),
):
    inside = [(x, y) for x, y in zip(xs_ok, ys) if lo <= y <= hi]
    above = [x for x, y in zip(xs_ok, ys) if y > hi]
    below = [x for x, y in zip(xs_ok, ys) if y < lo]
    ax.plot(*zip(*inside), ".", color=color, label=label)
    ax.plot(above, [hi] * len(above), "^", color=color, ms=6, clip_on=False)
    ax.plot(below, [lo] * len(below), "v", color=color, ms=6, clip_on=False)
for x in D_s[0]:
    ax.axvline(float(x), color="grey", ls=":", lw=1)
ax.set_ylim(lo, hi)
ax.set_xlabel(r"alternative support input $x_s$ (label 0)")
ax.set_ylabel("reconstructed query sample")
ax.grid(alpha=0.3)
ax.legend(fontsize=9)
plt.show()

# %% tags=["hide-input"]
pick = [
    min(ok, key=lambda m: abs(float(m.support[0][0]) - x))
    for x in (-2.0, 0.0, 0.5, 1.0, 1.5)
]
examples = [
    {
        "M_s": pair((m.support[0][0], m.support[1][0]), 2),
        "det A": f"{analysis.invertibility_condition(w, alpha, m.support)[1]:.4f}",
        "g' = A^-1 g": pair(m.g_prime.tolist(), 4),
        "M_q": pair((m.query[0][0], m.query[1][0]), 3),
        "g(M) by autograd": pair(
            analysis.maml_gradient_autograd(w, alpha, m.support, m.query).tolist(),
            6,
        ),
    }
    for m in pick
]
examples.append(
    {
        "M_s": "real task D",
        "det A": "",
        "g' = A^-1 g": "",
        "M_q": "D_q",
        "g(M) by autograd": pair(g.tolist(), 6),
    }
)
pd.DataFrame(examples).set_index("M_s")

# %% [markdown]
# Support inputs with $0.8 x_s + 0.3 \le 0$ leave the neuron inactive, so they do not
# move $\omega$ at all and share one reconstructed query sample (the flat part of the
# figure); near the right edge of the family the required query input runs off to
# infinity and then crosses to the inactive side of the ReLU, where the construction
# stops. The example shows what the proposition claims and no more: a gradient can be
# explained by many tasks. It does not say that a *specific* candidate image cannot be
# tested for membership, and the next chapters show that gradient matching with the
# candidate as a prior does reveal membership. In the neuron example the construction
# fails in three identifiable ways (counted above): $A$ singular, a zero entry in $g'$
# (for instance when no query sample is active, so that $g = 0$), or a reconstructed
# query input on the inactive side of the ReLU. The second failure is not a counterexample
# to non-uniqueness: with $g = 0$ any inactive query set reproduces it.

# %% [markdown]
# ## Where these numbers come from

# %% tags=["hide-input"]
trained = sum(measured["train_seconds"].values())
display(
    Markdown(
        "- "
        + pages.where_from([record], "Gradient-anatomy cell", trials=False)
        + "\n"
        f"- Its two runs: {cell['train_iterations']:,} meta-iterations each, "
        f"trained in {trained:.0f} s in all on the machine that trained them; "
        "every "
        f"analysis above uses {cell['tasks']} held-out tasks of the test split.\n"
        f"- This page took {time.perf_counter() - _chapter_start:.0f} s to execute."
    )
)

# %% [markdown]
# ## Takeaways
#
# - The support correction is a large share of the shared gradient, so the support set
#   is far from invisible in it.
# - Which set the gradient depends on more depends on the network and the inner loop: on the
#   book's MAML network (inner rate 0.4, trained) the support correction is as large as the
#   gradient and the answer changes with the kind of replacement; on the network the attacks
#   target (untrained, inner rate 0.1) a query swap moves the gradient more than a support
#   swap for every kind of replacement measured, in line with section III-C and with the
#   query attack being the stronger one.
# - Proposition 3.1 holds (we construct the alternative tasks and check them to
#   1e-10), but it concerns recovering a task from its gradient, not testing one known
#   candidate image.

# %% tags=["remove-cell"]
# The counterexample holds numerically: every accepted task reproduces g.
assert len(ok) > 0 and float(errors.max()) < 1e-10
