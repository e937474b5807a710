"""Membership-inference attacks: gradients of the matching objectives, optimisation,
the game, and the acceptance check of the query attack on MNIST."""

import pytest
import torch

from mamlpriv.attacks import (
    QueryAttackConfig, SupportAttackConfig, chunks, query_attack, query_objective, ssim_scores,
    support_attack, support_objective, total_variation,
)
from mamlpriv.data import load_dataset
from mamlpriv.experiments import ATTACK_NET, GameConfig, play
from mamlpriv.maml import MAMLConfig, task_gradient, task_gradients
from mamlpriv.metrics import roc_auc
from mamlpriv.models import ConvNet, MLP, forward, init_params

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


@pytest.fixture(scope="module")
def mnist_test():
    return load_dataset("mnist", "test")


def conv_net(ways=3, seed=0, **kwargs):
    model = ConvNet(ways, **{**ATTACK_NET, **kwargs})
    return forward(model), init_params(model, seed=seed)


def test_matching_loss_decreases(mnist_test):
    f, p = conv_net()
    res = play(f, p, mnist_test, GameConfig(target="query", trials=4, seed=3), MAMLConfig(0.1),
               QueryAttackConfig(iterations=30))
    first, last = res.loss[:, 0], res.loss[:, -1]  # (trials,)
    assert bool((last < first).all()), (first, last)
    assert res.reconstructions.shape == (4, 3, 1, 28, 28)
    assert 0 <= float(res.reconstructions.min()) and float(res.reconstructions.max()) <= 1


def test_support_matching_loss_decreases_on_average(mnist_test):
    """Through ReLU (and max-pooling) the second-order gradient is piecewise in the support
    pixels, so single trials fluctuate; on average over trials and the last iterations
    the matching loss must still go down (inner rate 0.5). Max-pool net: on the untrained
    strided net the support images barely move the gradient (loss starts near 0.2)."""
    f, p = conv_net(pool="max")
    res = play(f, p, mnist_test, GameConfig(target="support", trials=6, seed=3), MAMLConfig(0.5),
               SupportAttackConfig(iterations=40))
    assert float(res.loss[:, -10:].mean()) < 0.9 * float(res.loss[:, 0].mean()), res.loss[:, [0, -1]]


def test_hold_keeps_the_target_slot_at_its_prior(mnist_test):
    """With hold = iterations - 1 only the last step may move the target slot; with
    hold = 0 it moves from the first step."""
    f, p = conv_net()
    game = GameConfig(target="query", trials=4, seed=3)
    held = play(f, p, mnist_test, game, MAMLConfig(0.1), QueryAttackConfig(iterations=6, lr=0.05, hold=5, schedule="constant"))
    free = play(f, p, mnist_test, game, MAMLConfig(0.1), QueryAttackConfig(iterations=6, lr=0.05, hold=0, schedule="constant"))
    t = torch.arange(4)
    moved_held = (held.reconstructions[t, held.slots] - held.targets).abs().amax(dim=(1, 2, 3))
    moved_free = (free.reconstructions[t, free.slots] - free.targets).abs().amax(dim=(1, 2, 3))
    # one Adam step moves a pixel by at most about lr; six steps move it further
    assert float(moved_held.max()) <= 0.05 * 1.01, moved_held
    assert float(moved_free.min()) > 0.05 * 1.5, moved_free


def test_game_records_and_members(mnist_test, tmp_path):
    f, p = conv_net()
    res = play(f, p, mnist_test, GameConfig(trials=6, seed=4, game="strict"), MAMLConfig(0.1),
               QueryAttackConfig(iterations=2))
    assert int(res.members.sum()) == 3 and len(res.records) == 6
    for r in res.records:
        idx = r["target_index"]
        assert torch.equal(res.targets[r["trial"]], mnist_test.images[idx])
        # strict game: the target always has the class of the slot it is tested in
        classes = [int(c) for c in r["classes"].split("-")]
        assert int(mnist_test.labels[idx]) == classes[r["slot"]]  # 1-shot: slot j holds label j
    res.save(tmp_path / "g.csv")
    res.save(tmp_path / "g.json")
    assert (tmp_path / "g.csv").read_text().count("\n") == 7


def test_query_attack_auc_on_untrained_conv_net(mnist_test):
    """Acceptance: MNIST 3-way 1-shot, untrained conv net, 40 trials of the paper's game."""
    f, p = conv_net()
    res = play(f, p, mnist_test, GameConfig(target="query", game="paper", ways=3, shots=1, trials=40, seed=1),
               MAMLConfig(0.1, 1, False), QueryAttackConfig())
    assert roc_auc(res.scores, res.members) >= 0.95  # the issue asks 0.80; the strided net gives 1.0


@pytest.mark.parametrize(
    "kwargs,match",
    [({"iterations": 0}, "iterations"), ({"lr": -1.0}, "lr"), ({"tv_weight": -1e-3}, "tv_weight"),
     ({"init": "zeros"}, "init"), ({"schedule": "step"}, "schedule"), ({"restarts": 0}, "restarts"),
     ({"hold": -1}, "hold"), ({"iterations": 10, "hold": 10}, "hold")],
)
def test_bad_attack_parameters_raise(kwargs, match):
    for cls in (QueryAttackConfig, SupportAttackConfig):
        with pytest.raises(ValueError, match=match):
            cls(**kwargs)


def test_bad_game_parameters_raise(mnist_test):
    with pytest.raises(ValueError, match="trials"):
        GameConfig(trials=5)
    with pytest.raises(ValueError, match="game"):
        GameConfig(game="loose")
    with pytest.raises(ValueError, match="target"):
        GameConfig(target="both")
    f, p = conv_net()
    with pytest.raises(ValueError, match="SupportAttackConfig"):
        play(f, p, mnist_test, GameConfig(target="support", trials=2), MAMLConfig(0.1), QueryAttackConfig())
    with pytest.raises(ValueError, match="slot"):
        g = {k: v[None] for k, v in p.items()}
        query_attack(f, p, g, torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 1, 28, 28), torch.tensor([3]))


def test_write_result_records_provenance(tmp_path):
    import json

    from mamlpriv.experiments import write_result

    write_result(tmp_path / "r" / "x.json", "scripts/x.py", {"a": 1}, rows=[{"auc": 0.5}])
    out = json.loads((tmp_path / "r" / "x.json").read_text())
    prov = out["provenance"]
    assert prov["script"] == "scripts/x.py" and prov["args"] == {"a": 1}
    assert (len(prov["git_commit"]) == 40 or prov["git_commit"].startswith("unknown")) and prov["date"] and prov["versions"]["torch"]
    assert isinstance(prov["library_modified_since_commit"], bool)
    assert out["rows"] == [{"auc": 0.5}] and not list((tmp_path / "r").glob("*.tmp"))


def test_stage_and_attack_selection_pick_the_best_validation_auc(mnist_test):
    """evaluate_stages over one snapshot is evaluate_selected with one attack; over
    several candidates the pair with the best validation AUC is kept, and the test trials
    never enter the choice."""
    from mamlpriv.experiments import evaluate_selected, evaluate_stages

    f, p = conv_net()
    p2 = {k: v * 0.5 for k, v in p.items()}
    game = GameConfig(target="query", trials=6, seed=5)
    attack = QueryAttackConfig(iterations=5)
    one = evaluate_selected(f, {0: p}, mnist_test, game, MAMLConfig(0.1), [attack], validation_trials=6)
    staged = evaluate_stages(f, {0: p}, mnist_test, game, MAMLConfig(0.1), attack, validation_trials=6)
    assert staged["metrics"] == one["metrics"] and staged["stage"] == 0
    sel = evaluate_selected(f, {0: p, 7: p2}, mnist_test, game, MAMLConfig(0.1),
                            [attack, QueryAttackConfig(iterations=5, lr=0.01)], validation_trials=6)
    aucs = sel["validation_auc"]
    best = max(aucs.values())
    assert aucs[f"{sel['stage']}/{[attack.lr, 0.01].index(sel['attack']['lr'])}"] == best


@pytest.mark.parametrize("trials,images,limit", [(100, 3, 512), (100, 21, 512), (7, 2, 4), (5, 10, 3), (10, 3, 8), (1, 1, 1)])
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
    from mamlpriv.data import TaskBatch

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
        q = query_attack(f, p, g, y, x0, slot, QueryAttackConfig(iterations=15, restarts=restarts),
                         torch.Generator().manual_seed(1), chunk_images=limit)
        s = support_attack(f, p, g, y, xq, y, x0, slot, maml, SupportAttackConfig(iterations=15, restarts=restarts),
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
