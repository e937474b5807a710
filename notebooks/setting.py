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
# # The setting: federated MAML and its threat model
#
# This chapter sets the scene for the rest of the book. It needs no machine learning
# beyond "a neural network is trained by following the gradient of a loss"; every other
# word is explained here or in the {doc}`glossary`.
#
# ## What you will learn
#
# - who takes part in federated meta-learning, and who holds which data;
# - what happens in one round of MAML, step by step;
# - what the single gradient a task-learner sends is, and why it can give data away;
# - what the adversary wants to find out, what it may look at, and how the paper's two
#   attacks go about it.

# %% tags=["parameters"]
dataset = "mnist"  # "mnist" or "fashion-mnist": where the example task comes from
ways = 5  # classes in the example task
shots = 1  # support (and query) images per class
seed = 0  # which task is drawn
profile = "quick"  # accepted like every chapter's; this page computes almost nothing

# %%
from mamlpriv import pages

pages.parameters(globals(), ["dataset", "ways", "shots", "seed", "profile"]);

# %% tags=["remove-cell"]
import time

# this page's execution time, printed at its end
_chapter_start = time.perf_counter()

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from mamlpriv.data import TaskSampler, load_dataset
from mamlpriv.diagrams import (
    federated_maml,
    query_attack_pipeline,
    support_attack_pipeline,
    threat_model,
)
from mamlpriv.maml import MAMLConfig, task_gradient
from mamlpriv.models import ConvNet, forward, init_params

# %% [markdown]
# ## Learning from a handful of examples
#
# Meta-learning trains a model that can pick up a *new* small problem quickly. Each small
# problem is a {term}`task`: a few classes (the *ways*) with a few labelled images each
# (the *shots*). A task's images are split in two:
#
# - the {term}`support set`, the examples the model may learn from, and
# - the {term}`query set`, fresh images of the same classes on which the adapted model is
#   checked.
#
# Here is one task drawn from the training images, the kind of task the book works with
# throughout. The labels $0, 1, \dots$ are handed out afresh in every task, so "label 0"
# means a different digit in the next one.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "One few-shot task drawn from the training images: the support set (top row) and the query set (bottom row), with the labels the task gives its classes.", "name": "fig-setting-task"}}
data = load_dataset(dataset, "train")
task = TaskSampler(data, ways=ways, shots=shots).sample(seed=seed)
rows = [
    ("support", task.support_x, task.support_y),
    ("query", task.query_x, task.query_y),
]
n = max(len(task.support_y), len(task.query_y))
fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.0), squeeze=False)
for r, (name, images, labels) in enumerate(rows):
    for c, ax in enumerate(axes[r]):
        ax.set_xticks([])
        ax.set_yticks([])
        if c < len(labels):
            ax.imshow(images[c, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"label {int(labels[c])}", fontsize=10)
        else:
            ax.axis("off")
    axes[r][0].set_ylabel(name, fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Who holds what
#
# Federated meta-learning has two kinds of participants {cite:p}`rafiei2024privacy`:
#
# - one {term}`meta-learner`, a server that holds the model's starting parameters
#   $\omega$ (a long vector of numbers: every weight of the network);
# - many {term}`task-learners <task-learner>`, for example phones or hospitals, each with
#   one task whose support and query images are private: they never leave the
#   task-learner.
#
# The goal is a starting point $\omega$ from which *any* task-learner can fit its own
# task in a step or two. MAML, model-agnostic meta-learning {cite:p}`finn2017maml`,
# learns it in rounds.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Paper Figure 1, redrawn: one round of federated MAML. The meta-learner sends its parameters down to every task-learner; each adapts them on its private support set, scores the adapted model on its private query set and sends back one gradient. Grey boxes are data that never leave the task-learner.", "name": "fig-setting-federated"}}
federated_maml()
plt.show()

# %% [markdown]
# ## One round of meta-training
#
# In every round, each task-learner taking part does the following
# ({numref}`fig-setting-federated`):
#
# 1. **Receive** the current parameters $\omega$.
# 2. **Adapt** ({term}`inner loop`): take a gradient step on its support set, starting
#    from $\omega$, with a small step size $\alpha$. The result is its own parameters
#    $\theta = \omega - \alpha \nabla_\omega \mathcal{L}(\omega, D^s)$.
# 3. **Check**: compute the loss of the adapted model $\theta$ on its query set,
#    $\mathcal{L}(\theta, D^q)$. A low value means $\omega$ was a good place to start.
# 4. **Differentiate**: ask how that query loss would change if $\omega$ changed. The
#    answer is one vector, the {term}`task gradient <task gradient>`
#    $g = \nabla_\omega \mathcal{L}(\theta, D^q)$, with one number per parameter.
# 5. **Send** $g$, and nothing else, to the meta-learner.
#
# The meta-learner then averages the gradients it received and moves $\omega$ a little
# against that average, which makes adaptation work better on average. Thousands of
# such rounds make up meta-training; the chapter on MAML runs them.
#
# ## What one task gradient is
#
# The gradient is not a picture: it has exactly the shape of the model's parameters. The
# cell below builds the book's small convolutional network, computes the gradient that
# the task above would send at the untrained starting point, and counts.

# %%
model = ConvNet(ways=ways)
f, omega = forward(model), init_params(model, seed=seed)
maml = MAMLConfig(inner_lr=0.4, inner_steps=1)  # alpha and one adaptation step
g, query_loss, query_acc = task_gradient(
    f, omega, task.support_x, task.support_y, task.query_x, task.query_y, maml
)

n_params = sum(p.numel() for p in omega.values())
n_grad = sum(v.numel() for v in g.values())
same = all(g[k].shape == omega[k].shape for k in omega)
n_pixels = task.support_x.numel() + task.query_x.numel()
norm = sum(float(v.pow(2).sum()) for v in g.values()) ** 0.5
print(f"omega: {n_params:,} numbers in {len(omega)} tensors")
print(f"g:     {n_grad:,} numbers, same shapes as omega: {same}")
print(
    f"the task's images: {n_pixels:,} pixels "
    f"({len(task.support_y)} support + {len(task.query_y)} query)"
)
print(
    f"query loss after adaptation {float(query_loss):.3f}, length of g {norm:.3f}"
)

# %% [markdown]
# The gradient holds several times more numbers than the task has pixels, and it is
# computed from those pixels, so it may well carry traces of them. The chain rule shows where each set
# enters (the paper's eq. 6, written for one descent step):
#
# $$ g = \big(I - \alpha\, H^s\big)\, \nabla_\theta \mathcal{L}(\theta, D^q), $$
#
# where $H^s$ is the Hessian (the matrix of second derivatives) of the support loss at
# $\omega$. The query images enter through an ordinary gradient, the kind from which
# earlier work reconstructed training images {cite:p}`zhu2019dlg,geiping2020inverting`.
# The support images enter only through the Hessian factor and through $\theta$, which
# is why the paper expects the support set to be the harder one to attack.
# {term}`First-order MAML <first-order MAML>` drops the factor altogether and sends
# $\nabla_\theta \mathcal{L}(\theta, D^q)$.
#
# ## What the adversary wants
#
# The paper's adversary is the meta-learner itself. It is *passive*: it runs the protocol
# faithfully and only studies what it receives. Its question is one of
# {term}`membership inference`: given a candidate image $x_0$ and one task's gradient
# $g$, was $x_0$ in that task's query set? Or, in the second attack, in its support set?
# Knowing that one image was used can be harmful in itself (a patient's scan was in a
# hospital's data), and it is the simplest test of whether $g$ leaks anything at all.
#
# {numref}`fig-setting-threat` lists what the adversary may use. For the support attack
# the paper hands it the task's query images as well: a deliberately strong adversary,
# since a defence that stops it stops weaker ones too.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "The threat model of this book (not a figure of the paper): what the meta-learner, as adversary, knows in the query attack and in the support attack, beside what the task-learner holds.", "name": "fig-setting-threat"}}
threat_model()
plt.show()

# %% [markdown]
# Success is measured with a game. In each trial a coin is flipped: heads, $x_0$ is a
# real member of the attacked set; tails, it is an image that was not used. The attack
# gives $x_0$ a score and calls it a member when the score is above a threshold. Guessing
# wins half of the trials, so accuracy is read against 50%, together with the
# {term}`AUC` and the {term}`TPR at low FPR`. In the {term}`paper's game` the non-member
# may come from any class; the {term}`strict game` that this book adds keeps it in the
# member's class.
#
# ## How the attacks work
#
# Both attacks build on {term}`gradient matching`: guess the data, compute the gradient
# the guess would produce, and change the guess until that gradient lines up with the
# observed $g$. The twist of the paper is to start the guess *at the candidate image*.
# The adversary fills one slot of a dummy batch with $x_0$ (the *prior*) and the other
# slots with noise, and minimises
#
# $$ 1 - \cos\big(\hat g(x), g\big) + \lambda\, \mathrm{TV}(x), $$
#
# where $\hat g(x)$ is the gradient the dummy batch $x$ would produce, the cosine
# compares directions only, and the {term}`total variation <total variation>` term, with a
# small weight $\lambda$, rewards smooth images. If $x_0$ really was used, the
# gradient already "agrees" with it and the optimisation leaves that slot nearly
# untouched; if not, the slot is pulled towards the image that was really there. The
# {term}`SSIM` between $x_0$ and what its slot became {cite:p}`wang2004ssim` is the
# membership score.
#
# In the **query attack** ({numref}`fig-setting-query`) the adversary does not know the
# adapted parameters $\theta$, so it computes $\hat g$ at $\omega$ instead, betting that
# one step of adaptation moves the parameters only a little.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Paper Figure 2, redrawn: the query attack. The target image seeds one slot of a dummy query batch; the batch is changed until its gradient at omega points the same way as the shared gradient (1 - cos plus a TV penalty); the SSIM between the target and its reconstructed slot decides member or non-member.", "name": "fig-setting-query"}}
query_attack_pipeline()
plt.show()

# %% [markdown]
# In the **support attack** ({numref}`fig-setting-support`) the dummy batch plays the
# support set. The adversary replays the task-learner's work: it adapts $\omega$ on the
# dummy batch, computes the gradient on the known query set at the adapted parameters,
# and matches *that* to $g$. The gradient now depends on the candidate only through the
# adaptation, so this attack has a fainter signal to work with.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Paper Figure 3, redrawn: the support attack. As in the query attack, but the dummy batch stands for the support set: the adversary simulates the adaptation on it and the gradient on the task's query set (which this adversary is assumed to know) before matching the shared gradient.", "name": "fig-setting-support"}}
support_attack_pipeline()
plt.show()

# %% [markdown]
# The threshold $d$ on the SSIM is not tuned on the trials that are scored: it is set on
# separate validation trials, and the reported numbers come from fresh test trials.
#
# ## Where these numbers come from

# %% tags=["hide-input"]
display(
    Markdown(
        "This chapter reads no stored results: the example task and its gradient "
        "are "
        f"computed on this build, on the untrained network (seed {seed}), and the "
        "diagrams are drawn by `mamlpriv.diagrams`. This page took "
        f"{time.perf_counter() - _chapter_start:.0f} s to execute."
    )
)

# %% [markdown]
# ## Takeaways
#
# - Task-learners never send images; each sends one gradient per round, computed from
#   its private support and query sets.
# - That gradient has one number per model parameter, several times more than the task
#   has pixels. The query set enters it through a plain gradient, the support set only
#   through the adaptation, so the query set is expected to leak more.
# - The adversary is the honest-but-curious meta-learner, and its question is
#   membership: was this image in this task's query (or support) set?
# - Both attacks start a reconstruction from the candidate image and score how little it
#   moves; SSIM above a threshold means "member". The following chapters measure how
#   often that works, and how much noise stops it.

# %% tags=["remove-cell"]
# sanity check for nbval: the example task and its gradient are what the text says
assert len(task.support_y) == ways * shots and len(task.query_y) == ways * shots
assert all(g[k].shape == omega[k].shape for k in omega)
plt.close("all")
