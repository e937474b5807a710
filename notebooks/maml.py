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
# # MAML and the gradient it shares
#
# **What you will learn**
#
# - how one round of MAML works: a task-learner adapts on its support set and shares one
#   gradient computed on its query set;
# - the algorithm itself, in about twenty lines of plain PyTorch, and how its gradient
#   carries the support set (through the Hessian) and the query set;
# - how second-order and first-order MAML differ in what they share, in accuracy and in
#   cost.
#
# ## The idea
#
# In the setting of {cite:t}`rafiei2024privacy`, a *meta-learner* holds parameters
# $\omega$ and many *task-learners* each hold a small private data set, split into a
# support set $D^s$ and a query set $D^q$. In one round of MAML {cite:p}`finn2017maml`
# a task-learner
#
# 1. **adapts**: it takes $k$ steps of gradient descent on its support set,
#    $\theta_0 = \omega,\ \theta_{j+1} = \theta_j - \alpha \nabla_\theta
#    \mathcal{L}(\theta_j, D^s)$;
# 2. **validates**: it evaluates the adapted model $\theta_k$ on its query set and
#    sends the meta-learner the gradient of that loss with respect to $\omega$
#    (the paper's eq. 2 and 4):
#
# $$ g = \nabla_\omega \mathcal{L}\big(\theta_k(\omega), D^q\big)
#      = \prod_{j=0}^{k-1}\big(I - \alpha H^s(\theta_j)\big)\,
#        \nabla_\theta \mathcal{L}(\theta_k, D^q), $$
#
# where $H^s(\theta_j)$ is the Hessian of the support loss at step $j$. This vector
# $g$ is the only thing the meta-learner sees, and it is what every attack in this book
# works from: the query set enters through the gradient, the support set through the
# Hessians and through $\theta_k$. The paper writes the one-step case as
# $(I + H)$ in its eq. 6; with a descent step the factor is $I - \alpha H$, which is what
# `mamlpriv.maml.task_gradient` computes and what the test suite checks against an
# explicit Hessian.
#
# *First-order* MAML (FOMAML, the paper's eq. 7) drops the Hessians and shares
# $g_{FO} = \nabla_\theta \mathcal{L}(\theta_k, D^q)$; the support set then reaches
# $g$ only through $\theta_k$.
#
# The meta-learner averages the gradients of a meta-batch of tasks and takes an Adam
# step. This chapter trains both variants on few-shot tasks and measures how well the
# meta-learned $\omega$ adapts to tasks built from images it has never seen (the test
# split). The attacks of later chapters run on a smaller network of the same family
# (32 channels, no normalisation, strided convolutions; see the attack chapter), trained
# the same way.

# %% tags=["parameters", "remove-input"]
dataset = "mnist"  # "mnist" or "fashion-mnist"
ways = 5  # classes per task
shots = 1  # support (and query) images per class
iterations = None  # meta-iterations; None: the profile's (a stored paper-profile run if any)
seed = 0
profile = "quick"  # "quick" (1,000 meta-iterations; about 2 minutes on 2 cores) or "paper" (10,000)
inner_lr = 0.4  # alpha
inner_steps = 1  # k, for the second-order run and the first first-order run
fo_long_steps = 5  # k for a second first-order run
results_dir = "../results"  # the runner's results: <results_dir>/<profile>/<experiment>/<cell>.json

# %% tags=["remove-cell"]
from mamlpriv import pages

_params = pages.parameters(globals(), ["dataset", "ways", "shots", "iterations", "seed", "profile",
                                       "inner_lr", "inner_steps", "fo_long_steps", "results_dir"]);

# %% tags=["remove-input"]
import time

from IPython.display import Markdown, display

# this page's execution time, printed at its end
_chapter_start = time.perf_counter()
display(Markdown(pages.summary(_params)))

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from mamlpriv.cells import from_config
from mamlpriv.plots import PALETTE, learning_curves

variants = [  # (label, first_order, k)
    (f"second-order, k={inner_steps}", False, inner_steps),
    (f"first-order, k={inner_steps}", True, inner_steps),
    (f"first-order, k={fo_long_steps}", True, fo_long_steps),
]
colors = dict(
    zip(
        [label for label, _, _ in variants],
        [
            PALETTE["second order"],
            PALETTE["first order"],
            PALETTE["first order, more steps"],
        ],
    )
)

# %% [markdown]
# ## The algorithm in twenty lines
#
# Here is a task-learner's side of one round, written with nothing but PyTorch: $k$ steps
# of gradient descent on the support set that keep the graph (`create_graph=True`), then
# the gradient of the query loss with respect to $\omega$, back through those steps. The
# meta-learner's side averages what the task-learners send and takes an Adam step.

# %%
import torch
import torch.nn.functional as F
from torch.func import functional_call


def shared_gradient(model, omega, x_s, y_s, x_q, y_q, alpha, k):
    """What one task-learner sends: d L(theta_k, D_q) / d omega, second order."""
    theta = omega
    for _ in range(k):  # adapt on the support set, keeping the graph
        loss_s = F.cross_entropy(functional_call(model, theta, (x_s,)), y_s)
        grads = torch.autograd.grad(loss_s, list(theta.values()), create_graph=True)
        theta = {name: p - alpha * g for (name, p), g in zip(theta.items(), grads)}
    loss_q = F.cross_entropy(functional_call(model, theta, (x_q,)), y_q)
    # differentiate through the adaptation, back to omega
    return torch.autograd.grad(loss_q, list(omega.values()))


def meta_step(model, omega, tasks, alpha, k, optimizer):
    """The meta-learner: average the task-learners' gradients, one Adam step."""
    sent = [shared_gradient(model, omega, *task, alpha, k) for task in tasks]
    for p, *gs in zip(omega.values(), *sent):
        p.grad = torch.stack(gs).mean(0)
    optimizer.step()


# %% [markdown]
# The library computes the same gradient with `torch.func` and `vmap` over the tasks of
# a meta-batch (`mamlpriv.maml.task_gradient`); on a fresh network and one task the two
# agree to float precision:

# %% tags=["hide-input"]
from mamlpriv.data import TaskSampler, load_dataset
from mamlpriv.maml import MAMLConfig, task_gradient
from mamlpriv.models import ConvNet, forward, init_params

model = ConvNet(ways)
omega = {k: v.requires_grad_() for k, v in init_params(model, seed=seed).items()}
task = TaskSampler(load_dataset(dataset, "train"), ways, shots).sample(seed)
batch = (task.support_x, task.support_y, task.query_x, task.query_y)
ours = shared_gradient(model, omega, *batch, inner_lr, 2)
plain = {k: v.detach() for k, v in omega.items()}
lib = task_gradient(forward(model), plain, *batch, MAMLConfig(inner_lr, 2))[0]
gap = max(float((a - lib[name]).abs().max()) for a, name in zip(ours, omega))
g_scale = max(float(v.abs().max()) for v in lib.values())
print(f"largest difference, 2 inner steps: {gap:.1e}")
print(f"largest entry of g:                {g_scale:.1e}")
assert gap <= 1e-4 * g_scale

# %% [markdown]
# ## Meta-training, second- and first-order
#
# All runs use the same seed, so they see the same sequence of tasks and start from the
# same initialisation (the conv net of `mamlpriv.models.ConvNet`: four 3x3 conv blocks
# with 32 channels and GroupNorm, meta-batch of 4 tasks, Adam at 1e-3). They differ only
# in whether the gradient carries the Hessian terms and in the number of inner steps
# $k$. Every 100 meta-iterations, accuracy is measured on 200 held-out tasks drawn from
# the test split, adapting with the same inner loop as in training. The three runs are
# the cells of the runner's `maml-variants` experiment (`mamlpriv.catalog.maml_variants`):
# each is stored with its whole curve, so the page shows the paper profile's runs
# (10,000 meta-iterations) where they are stored and trains the others here, resuming an
# interrupted run.

# %% tags=["hide-input"]
records = pages.shown(
    "maml-variants",
    profile,
    results_dir,
    paper_points=iterations is None,  # another length: train exactly that, here
    dataset=dataset,
    ways=ways,
    shots=shots,
    seed=seed,
    inner_lr=inner_lr,
    inner_steps=inner_steps,
    fo_long_steps=fo_long_steps,
    iterations=iterations,
)
by_variant = {
    (c.maml.first_order, c.maml.inner_steps): r["result"]["history"]
    for r in records
    for c in [from_config(r["config"])]
}
runs = {label: by_variant[(fo, k)] for label, fo, k in variants}

# %% mystnb={"figure": {"caption": "Meta-test accuracy on held-out tasks (test split) during meta-training: second-order MAML (teal) and first-order MAML with one and with more inner steps (orange, brown). Bands: 95% confidence intervals over the evaluation tasks; k is the number of inner steps; the dotted line is chance, 1/ways.", "name": "fig-maml-curves"}}
ax = learning_curves(runs, chance=1 / ways, colors=colors)
ax.set_title(f"{dataset}, {ways}-way {shots}-shot", fontsize=10)
plt.show()

# %% [markdown]
# ## Final accuracy
#
# The table gives the accuracy after the last meta-iteration with the half-width of its
# 95% confidence interval over the evaluation tasks, and the training time per
# meta-iteration on the machine that trained the run.

# %% tags=["hide-input"]
table = pd.DataFrame(
    [
        {
            "MAML": label,
            "meta-iterations": hist[-1]["iteration"],
            "test accuracy": round(hist[-1]["test_acc"], 4),
            "95% CI (±)": round(hist[-1]["test_ci95"], 4),
            "s / meta-iteration": round(
                hist[-1]["train_seconds"] / hist[-1]["iteration"], 4
            ),
        }
        for label, hist in runs.items()
    ]
).set_index("MAML")
shown_table = pd.DataFrame(
    {
        "meta-iterations": table["meta-iterations"],
        "test accuracy (95% CI)": [
            f"{a:.3f} ± {c:.3f}"
            for a, c in zip(table["test accuracy"], table["95% CI (±)"])
        ],
        "s / meta-iteration": table["s / meta-iteration"].map("{:.3f}".format),
    }
)
shown_table

# %% [markdown]
# ## Why first-order MAML with one inner step learns slowly
#
# With a single inner step, the first-order gradient is the query-loss gradient at a
# point only one small step away from $\omega$. Expanding it {cite:p}`nichol2018first`,
#
# $$ g_{FO} = \nabla \mathcal{L}(\omega, D^q)
#   - \alpha H^q(\omega)\nabla\mathcal{L}(\omega, D^s) + O(\alpha^2), $$
#
# and the leading term is the gradient of plain joint training. In few-shot
# classification the labels $0..w-1$ are assigned to classes afresh in every task, so
# joint training has almost nothing to learn (the best fixed prediction is uniform), and
# only the small $O(\alpha)$ term pushes towards an initialisation that adapts well.
# Second-order MAML keeps the full $(I - \alpha H^s)$ factor, and first-order MAML with
# more inner steps moves $\theta_k$ far enough from $\omega$ for the query gradient to
# carry task-specific signal. The measured gaps in this run:

# %% tags=["hide-input"]
so, fo1, fok = (table.iloc[i] for i in range(3))
acc, sec = "test accuracy", "s / meta-iteration"
display(
    Markdown(
        f"- accuracy, second-order minus first-order (k={inner_steps}): "
        f"{so[acc] - fo1[acc]:+.3f}\n"
        f"- accuracy, second-order minus first-order (k={fo_long_steps}): "
        f"{so[acc] - fok[acc]:+.3f}\n"
        f"- time per meta-iteration relative to first-order k={inner_steps}: "
        f"second-order {so[sec] / fo1[sec]:.1f}x, "
        f"first-order k={fo_long_steps} {fok[sec] / fo1[sec]:.1f}x"
    )
)

# %% [markdown]
# The times are those of the machine that trained each run (a stored run keeps the times
# it was trained with), so ratios between runs trained on different occasions can
# mislead; `bench/maml_speed.py` measures both variants side by side.
#
# ## Where these numbers come from

# %% tags=["hide-input"]
trained = sum(h[-1]["train_seconds"] for h in runs.values())
length = runs[variants[0][0]][-1]["iteration"]
display(
    Markdown(
        "- " + pages.where_from(records, "MAML runs", trials=False) + "\n"
        f"- Each run: {length:,} meta-iterations; training took {trained:.0f} s "
        "in all, on the machines that trained them.\n"
        f"- This page took {time.perf_counter() - _chapter_start:.0f} s to execute."
    )
)

# %% [markdown]
# ## Takeaways
#
# - A task-learner shares one vector, $g = \prod_j (I - \alpha H^s_j)\,\nabla
#   \mathcal{L}(\theta_k, D^q)$: its query set enters through the last gradient, its
#   support set through the adaptation (the Hessians and $\theta_k$).
# - Second-order MAML learns fast on few-shot tasks; first-order MAML with one inner step
#   learns slowly, because its gradient is mostly that of joint training; more inner
#   steps close much of the gap.
# - Both variants share a gradient from which, as the next chapters show, the
#   meta-learner can infer which images a task-learner used.

# %% tags=["remove-cell"]
# For nbval: at the profile's length, second-order MAML learns well above chance
# (1/ways); a rerun with few iterations (-p iterations 2) is not held to that.
if iterations is None:
    assert runs[variants[0][0]][-1]["test_acc"] > 2 / ways, (
        "second-order MAML failed"
    )
