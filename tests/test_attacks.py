"""Membership-inference attacks: gradients of the matching objectives, optimisation,
chunking, the ATTACKS table, and the acceptance check of the query attack on MNIST.
The game they are played in is tested in test_membership.py."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import REPO, attack_net

from mamlpriv import attacks
from mamlpriv.attacks import (
    ATTACKS,
    TARGETS,
    AttackConfig,
    AttackSpec,
    attack_for,
    chunks,
    decide,
    query_attack,
    query_objective,
    ssim_scores,
    support_attack,
    support_objective,
    total_variation,
)
from mamlpriv.data import TaskBatch
from mamlpriv.maml import MAMLConfig, task_gradient, task_gradients
from mamlpriv.membership import GameConfig, play
from mamlpriv.metrics import roc_auc
from mamlpriv.models import MLP, forward, init_params

DT = torch.float64


class TinyImageMLP(MLP):
    """An MLP on 1x3x3 images, small enough for finite differences."""

    def __init__(self):
        super().__init__(2, hidden=3, layers=1, in_features=9)


def tiny_setup(seed=0, first_order=False):
    model = TinyImageMLP()
    f, p = forward(model), init_params(model, seed=seed, dtype=DT)
    gen = torch.Generator().manual_seed(seed)
    xs, xq = torch.rand(2, 1, 3, 3, generator=gen, dtype=DT), torch.rand(2, 1, 3, 3, generator=gen, dtype=DT)
    y = torch.tensor([0, 1])
    maml = MAMLConfig(0.5, 1, first_order)
    g, _, _ = task_gradient(f, p, xs, y, xq, y, maml)
    target = torch.cat([v.reshape(1, -1) for v in g.values()], dim=1)
    return f, p, xs, xq, y, maml, target


@pytest.mark.parametrize("first_order", [False, True])
def test_support_objective_gradient_matches_finite_differences(first_order):
    f, p, xs, xq, y, maml, target = tiny_setup(1, first_order)
    obj = support_objective(f, p, target, y[None], xq[None], y[None], maml, tv_weight=1e-2)
    x = torch.rand(1, 2, 1, 3, 3, generator=torch.Generator().manual_seed(5), dtype=DT).requires_grad_()
    (gx,) = torch.autograd.grad(obj(x).sum(), x)
    assert float(gx.abs().max()) > 1e-4  # the candidate support images do move the objective
    eps = 1e-6
    for i in range(gx.numel()):
        e = torch.zeros_like(x).flatten()
        e[i] = eps
        e = e.view_as(x)
        fd = (obj(x.detach() + e) - obj(x.detach() - e)).sum() / (2 * eps)
        assert float(gx.flatten()[i]) == pytest.approx(float(fd), abs=1e-7, rel=1e-5)


def test_query_objective_gradient_matches_finite_differences():
    f, p, xs, xq, y, maml, target = tiny_setup(2)
    obj = query_objective(f, p, target, y[None], tv_weight=1e-2)
    x = torch.rand(1, 2, 1, 3, 3, generator=torch.Generator().manual_seed(6), dtype=DT).requires_grad_()
    (gx,) = torch.autograd.grad(obj(x).sum(), x)
    eps = 1e-6
    for i in range(0, gx.numel(), 2):
        e = torch.zeros_like(x).flatten()
        e[i] = eps
        fd = (obj(x.detach() + e.view_as(x)) - obj(x.detach() - e.view_as(x))).sum() / (2 * eps)
        assert float(gx.flatten()[i]) == pytest.approx(float(fd), abs=1e-7, rel=1e-5)


def test_support_objective_is_zero_at_the_true_support_set():
    f, p, xs, xq, y, maml, target = tiny_setup(3)
    obj = support_objective(f, p, target, y[None], xq[None], y[None], maml, tv_weight=0.0)
    assert float(obj(xs[None])) == pytest.approx(0.0, abs=1e-12)


def test_total_variation_by_hand():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0  # one bright pixel: 2 vertical and 2 horizontal unit steps
    assert float(total_variation(x[None])) == pytest.approx(2 / 6 + 2 / 6)
    assert total_variation(torch.rand(4, 2, 1, 5, 5)).shape == (4,)


def test_ssim_scores_identity_and_noise():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 28, 28, generator=gen)
    s = ssim_scores(a, a)
    assert torch.allclose(s, torch.ones(3, dtype=DT))
    assert float(ssim_scores(a, torch.rand(3, 1, 28, 28, generator=gen)).max()) < 0.2


def test_decide_thresholds_strictly():
    assert decide(torch.tensor([0.2, 0.5, 0.7]), 0.5).tolist() == [False, False, True]
    assert decide([0.9], 0.1).tolist() == [True]


def test_decide_refuses_nan_scores_instead_of_calling_them_non_members():
    """Issue 16: a NaN gradient or target gives NaN scores; they must not pass as 'non-member'."""
    with pytest.raises(ValueError, match="scores must not be NaN: 1 of 3"):
        decide(torch.tensor([0.2, float("nan"), 0.7]), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        decide(torch.tensor([0.2]), float("nan"))


# ----- on MNIST, through the game -----------------------------------------------------------

@pytest.mark.slow
def test_matching_loss_decreases(mnist_test):
    f, p = attack_net()
    res = play(f, p, mnist_test, GameConfig(target="query", trials=4, seed=3), MAMLConfig(0.1),
               AttackConfig(iterations=30))
    first, last = res.loss[:, 0], res.loss[:, -1]  # (trials,)
    assert bool((last < first).all()), (first, last)
    assert res.reconstructions.shape == (4, 3, 1, 28, 28)
    assert 0 <= float(res.reconstructions.min()) and float(res.reconstructions.max()) <= 1


@pytest.mark.slow
def test_support_matching_loss_decreases_on_average(mnist_test):
    """Through ReLU (and max-pooling) the second-order gradient is piecewise in the support
    pixels, so single trials fluctuate; on average over trials and the last iterations
    the matching loss must still go down (inner rate 0.5). Max-pool net: on the untrained
    strided net the support images barely move the gradient (loss starts near 0.2)."""
    f, p = attack_net(pool="max")
    res = play(f, p, mnist_test, GameConfig(target="support", trials=6, seed=3), MAMLConfig(0.5),
               AttackConfig(iterations=40))
    assert float(res.loss[:, -10:].mean()) < 0.9 * float(res.loss[:, 0].mean()), res.loss[:, [0, -1]]


@pytest.mark.slow
def test_hold_keeps_the_target_slot_at_its_prior(mnist_test):
    """With hold = iterations - 1 only the last step may move the target slot; with
    hold = 0 it moves from the first step."""
    f, p = attack_net()
    game = GameConfig(target="query", trials=4, seed=3)
    held = play(f, p, mnist_test, game, MAMLConfig(0.1),
                AttackConfig(iterations=6, lr=0.05, hold=5, schedule="constant"))
    free = play(f, p, mnist_test, game, MAMLConfig(0.1),
                AttackConfig(iterations=6, lr=0.05, hold=0, schedule="constant"))
    t = torch.arange(4)
    moved_held = (held.reconstructions[t, held.slots] - held.targets).abs().amax(dim=(1, 2, 3))
    moved_free = (free.reconstructions[t, free.slots] - free.targets).abs().amax(dim=(1, 2, 3))
    # one Adam step moves a pixel by at most about lr; six steps move it further
    assert float(moved_held.max()) <= 0.05 * 1.01, moved_held
    assert float(moved_free.min()) > 0.05 * 1.5, moved_free


@pytest.mark.slow
def test_query_attack_auc_on_untrained_conv_net(mnist_test):
    """Acceptance: MNIST 3-way 1-shot, untrained conv net, 40 trials of the paper's game,
    the query attack's default settings (ATTACKS)."""
    f, p = attack_net()
    res = play(f, p, mnist_test, GameConfig(target="query", game="paper", ways=3, shots=1, trials=40, seed=1),
               MAMLConfig(0.1, 1, False))
    assert roc_auc(res.scores, res.members) >= 0.95  # the issue asks 0.80; the strided net gives 1.0


# ----- configuration and input checks ---------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs,match",
    [({"iterations": 0}, "iterations"), ({"lr": -1.0}, "lr"), ({"lr": float("inf")}, "lr"),
     ({"tv_weight": -1e-3}, "tv_weight"), ({"init": "zeros"}, "init"), ({"schedule": "step"}, "schedule"),
     ({"restarts": 0}, "restarts"), ({"hold": -1}, "hold"), ({"iterations": 10, "hold": 10}, "hold")],
)
def test_bad_attack_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttackConfig(**kwargs)


@pytest.mark.parametrize("kwargs,match", [({"iterations": 10.0}, "iterations"), ({"restarts": True}, "restarts"),
                                          ({"lr": "0.1"}, "lr")])
def test_attack_parameters_of_the_wrong_type_raise(kwargs, match):
    with pytest.raises(TypeError, match=match):
        AttackConfig(**kwargs)


def test_attack_config_stores_plain_python_numbers():
    cfg = AttackConfig(iterations=np.int64(20), lr=np.float32(0.5), hold=np.int64(2))
    assert type(cfg.iterations) is int and type(cfg.lr) is float and type(cfg.hold) is int
    assert json.loads(json.dumps(asdict(cfg))) == asdict(cfg)  # what a cell stores


def test_attacks_refuse_mismatched_shapes():
    trials = 2
    f, p, g, xs, xq, y, maml, x0 = _tiny_tasks(trials)
    slot = torch.zeros(trials, dtype=torch.long)
    with pytest.raises(ValueError, match="slot"):
        query_attack(f, p, g, y, x0, torch.tensor([0, 2]))  # 2 images per task: slot 2 does not exist
    with pytest.raises(ValueError, match="slot"):
        query_attack(f, p, g, y, x0, torch.tensor([0]))
    with pytest.raises(ValueError, match="labels"):
        query_attack(f, p, g, y[:1], x0, slot)
    with pytest.raises(ValueError, match="leading trial axis"):
        query_attack(f, p, {k: v[:1] for k, v in g.items()}, y, x0, slot)
    with pytest.raises(ValueError, match="x_q"):
        support_attack(f, p, g, y, xq[:1], y, x0, slot, maml)


# ----- the ATTACKS table -------------------------------------------------------------------

def test_attacks_table_has_both_targets():
    assert TARGETS == ("query", "support") == tuple(ATTACKS)
    for target in TARGETS:
        spec = attack_for(target)
        assert spec is ATTACKS[target] and isinstance(spec, AttackSpec)
        assert isinstance(spec.defaults, AttackConfig) and callable(spec.run)
    with pytest.raises(ValueError, match="target"):
        attack_for("both")


@pytest.mark.parametrize("target", [
    "query",
    "support",
])
def test_each_attack_s_defaults_are_a_row_of_its_search(target):
    """The search file an attack names records the setting it chose, with its AUC."""
    spec = attack_for(target)
    path = REPO / spec.search
    assert path.is_file(), path
    rows = json.loads(path.read_text())["rows"]
    chosen = asdict(spec.defaults)
    hits = [r for r in rows if all(r.get(k, chosen[k]) == chosen[k] for k in chosen)
            and all(k in r for k in ("iterations", "lr", "tv_weight"))]
    assert hits and all(0.5 <= r["auc"] <= 1 for r in hits)


def test_attack_specs_run_the_attack_of_their_set():
    """ATTACKS[target].run on a task batch is the attack on that batch's attacked set (the
    query attack sees the query labels; the support attack the support labels and the
    query set)."""
    trials = 3
    f, p, g, xs, xq, y, maml, x0 = _tiny_tasks(trials)
    yq = (1 - y).clone()  # different query labels: a run that read the wrong labels would differ
    batch = TaskBatch(xs, y, xq, yq)
    slot = torch.tensor([0, 1, 0])
    cfg = AttackConfig(iterations=4)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    q = ATTACKS["query"].run(f, p, g, batch, x0, slot, maml, cfg, gen())
    torch.testing.assert_close(q.scores, query_attack(f, p, g, yq, x0, slot, cfg, gen()).scores, rtol=0, atol=0)
    s = ATTACKS["support"].run(f, p, g, batch, x0, slot, maml, cfg, gen())
    ref = support_attack(f, p, g, y, xq, yq, x0, slot, maml, cfg, gen())
    torch.testing.assert_close(s.reconstruction, ref.reconstruction, rtol=0, atol=0)
    assert not torch.equal(q.reconstruction, s.reconstruction)


def test_query_and_support_attacks_share_one_body(monkeypatch):
    calls = []
    real = attacks._attack

    def spy(objective_for_rows, per_trial, *args, **kwargs):
        calls.append(len(per_trial))
        return real(objective_for_rows, per_trial, *args, **kwargs)

    monkeypatch.setattr(attacks, "_attack", spy)
    f, p, g, xs, xq, y, maml, x0 = _tiny_tasks(2)
    slot = torch.zeros(2, dtype=torch.long)
    query_attack(f, p, g, y, x0, slot, AttackConfig(iterations=1))
    support_attack(f, p, g, y, xq, y, x0, slot, maml, AttackConfig(iterations=1))
    assert calls == [1, 3]  # query: its labels; support: labels, query images and labels


# ----- chunks -----------------------------------------------------------------------------

@pytest.mark.parametrize("trials,images,limit",
                         [(100, 3, 512), (100, 21, 512), (7, 2, 4), (5, 10, 3), (10, 3, 8), (1, 1, 1)])
def test_chunks_cover_the_trials_in_order_within_the_limit(trials, images, limit):
    parts = chunks(trials, images, limit)
    assert [i for s in parts for i in range(s.start, s.stop)] == list(range(trials))
    assert all(s.stop > s.start for s in parts)
    if trials * images <= limit:
        assert parts == [slice(0, trials)]
    else:
        most = max(1, limit // images)
        sizes = [s.stop - s.start for s in parts]
        assert max(sizes) <= most  # within the limit, or one trial per chunk
        assert len(parts) == -(-trials // most)  # the fewest such chunks


def test_chunks_reject_bad_limits():
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="chunk_images"):
            chunks(10, 3, bad)
    assert chunks(10, 3, None) == [slice(0, 10)]


def _tiny_tasks(trials, seed=0):
    """``trials`` 2-way 1-shot tasks of 1x7x7 images for an MLP, float64."""
    model = MLP(2, hidden=4, layers=1, in_features=49)
    f, p = forward(model), init_params(model, seed=seed, dtype=DT)
    gen = torch.Generator().manual_seed(seed)
    xs, xq = (torch.rand(trials, 2, 1, 7, 7, generator=gen, dtype=DT) for _ in range(2))
    y = torch.tensor([0, 1]).expand(trials, 2)
    maml = MAMLConfig(0.5)
    g, _, _ = task_gradients(f, p, TaskBatch(xs, y, xq, y), maml)
    x0 = torch.where(torch.arange(trials)[:, None, None, None] % 2 == 0, xs[:, 0],
                     torch.rand(trials, 1, 7, 7, generator=gen, dtype=DT))
    return f, p, g, xs, xq, y, maml, x0


@pytest.mark.parametrize("restarts", [1, 2])
def test_chunked_attacks_match_one_batch(restarts):
    """Trials are independent: optimising them in chunks gives the one-batch result up to
    rounding (a chunk given another trial's target or labels would not)."""
    trials = 5
    f, p, g, xs, xq, y, maml, x0 = _tiny_tasks(trials)
    slot = torch.zeros(trials, dtype=torch.long)
    runs = {}
    for limit in (None, 4, 1):
        q = query_attack(f, p, g, y, x0, slot, AttackConfig(iterations=15, restarts=restarts),
                         torch.Generator().manual_seed(1), chunk_images=limit)
        s = support_attack(f, p, g, y, xq, y, x0, slot, maml, AttackConfig(iterations=15, restarts=restarts),
                           torch.Generator().manual_seed(1), chunk_images=limit)
        runs[limit] = (q, s)
    for limit in (4, 1):
        for one, chunked in zip(runs[None], runs[limit]):
            torch.testing.assert_close(chunked.reconstruction, one.reconstruction, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(chunked.loss, one.loss, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(chunked.scores, one.scores, rtol=1e-9, atol=1e-9)
    # the attacks did move the pixels and the trials differ, so the comparison has teeth
    q, s = runs[None]
    assert float((s.loss[:, 0] - s.loss[:, -1]).min()) > 0
    assert float((q.reconstruction[0] - q.reconstruction[1]).abs().max()) > 0.1


@pytest.mark.parametrize("restarts", [1, 2])
def test_attacking_a_subset_gives_those_trials_of_the_full_run(restarts):
    """keep= optimises only some trials, each from the start it has in the full run: the
    same result for those trials (up to rounding); a wrong start would differ at once."""
    trials = 5
    f, p, g, xs, xq, y, maml, x0 = _tiny_tasks(trials)
    slot = torch.tensor([0, 1, 1, 0, 1])
    cfg = AttackConfig(iterations=15, restarts=restarts)
    keep = torch.tensor([1, 3, 4])
    for run in (
        lambda k: query_attack(f, p, g, y, x0, slot, cfg, torch.Generator().manual_seed(1), keep=k),
        lambda k: support_attack(f, p, g, y, xq, y, x0, slot, maml, cfg, torch.Generator().manual_seed(1), keep=k),
    ):
        full, part = run(None), run(keep)
        assert part.scores.shape == (3,) and part.loss.shape == (3, 15)
        torch.testing.assert_close(part.reconstruction, full.reconstruction[keep], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(part.loss, full.loss[keep], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(part.scores, full.scores[keep], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="keep must be distinct trial indices"):
        query_attack(f, p, g, y, x0, slot, cfg, keep=torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="keep must be distinct trial indices"):
        query_attack(f, p, g, y, x0, slot, cfg, keep=torch.tensor([5]))
