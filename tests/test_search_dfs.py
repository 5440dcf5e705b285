"""Contract of sample_dfs: budget respected, backtracking events, best complete sample, determinism."""
import math

import pytest
import torch

from search_core import DFSConfig, Trace, sample_dfs
from search_core.testbed import BumpsReward, standard_mixture

GMM = standard_mixture()
RARE = BumpsReward([[0.0, 3.0]], [0.6], [1.0])  # high only at the rare mode (weight 0.05)


def _run(delta, budget=30, n_items=6, seed=0, noise_form="eps", reward=RARE, **kw):
    steps = 10
    sigmas = torch.linspace(6.0, 0.0, steps + 1) if noise_form == "eps" else torch.linspace(1.0, 0.0, steps + 1)
    x = torch.randn(n_items, 2, generator=torch.Generator().manual_seed(seed)) * sigmas[0]
    events = []
    res = Trace(on_event=events.append)
    out = sample_dfs(GMM.denoiser(noise_form), x, sigmas, score_fn=reward, generator=torch.Generator().manual_seed(1),
                     config=DFSConfig(delta=delta, backtrack_steps=4, nfe_budget=budget, **kw), noise_form=noise_form,
                     trace=res)
    return out, res, events


@pytest.mark.parametrize("noise_form", ["eps", "flow"])
def test_easy_threshold_never_backtracks(noise_form):
    out, res, events = _run(-math.inf, noise_form=noise_form)
    assert out.shape == (6, 2) and res.nfe_per_item == [10] * 6 and res.nfe == 60
    assert not any(e["type"] == "backtrack" for e in events) and res.backtracks == [0] * 6


@pytest.mark.parametrize("budget", [10, 17, 30])
def test_budget_is_respected_and_dives_complete(budget):
    out, res, events = _run(math.inf, budget=budget)  # nothing ever passes: backtrack whenever the budget allows
    assert all(n <= budget for n in res.nfe_per_item) and torch.isfinite(out).all()
    assert all(n > budget - 10 for n in res.nfe_per_item)  # it used what it could (a dive costs at most 10)
    backs = [e for e in events if e["type"] == "backtrack"]
    assert (len(backs) > 0) == (budget > 10)
    for e in backs:
        assert e["step_to"] == max(0, e["step_from"] - 4) and (e["threshold"] is None or e["score"] < e["threshold"])  # inf -> null


def test_returns_the_best_complete_sample_seen():
    out, res, events = _run(0.9, budget=40)
    assert torch.allclose(RARE(out), res.rewards[:, 0])
    finals = {}
    for e in events:  # every complete sample (last step) the dive produced, per item
        if e["type"] == "step" and e["step"] == 9:
            finals.setdefault(e["item"], []).append(e["score"])
    for item, scores in finals.items():
        assert abs(max(scores) - float(res.rewards[item, 0])) < 1e-5


def test_hard_items_get_more_compute_and_determinism():
    second = BumpsReward([[2.0, 0.0]], [1.5], [1.0])  # the mode of weight 0.35
    out1, res1, _ = _run(0.5, budget=60, n_items=20, reward=second, check_from=5)
    out2, res2, _ = _run(0.5, budget=60, n_items=20, reward=second, check_from=5)
    plain, _, _ = _run(-math.inf, budget=60, n_items=20, reward=second)
    assert torch.equal(out1, out2) and res1.nfe_per_item == res2.nfe_per_item
    first_ok = [n == 10 for n in res1.nfe_per_item]
    assert 0 < sum(first_ok) < 20  # some items pass at once, others search longer
    assert (second(out1) > 0.5).float().mean() > (second(plain) > 0.5).float().mean() + 0.3


def test_bad_config_raises():
    with pytest.raises(ValueError, match="nfe_budget"):
        _run(0.0, budget=5)
    with pytest.raises(ValueError, match="delta_schedule"):
        _run(0.0, delta_schedule="weird")


def _counted(fn, log):
    def wrapped(z):
        log.append(z.shape[0])
        return fn(z)
    return wrapped


@pytest.mark.parametrize("recur,start", [(1, 4), (2, 0), (1, 9)])
def test_budget_holds_exactly_with_local_search(recur, start):
    """Guidance and recurrence evaluations count against the budget; local settings' start_step is honoured."""
    from search_core import LangevinConfig
    local = LangevinConfig(mu=0.1, recur_steps=recur, start_step=start)
    dive = 10 + recur * (10 - start)
    budget = 2 * dive + 3
    events = []
    res = Trace(on_event=events.append)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0)) * 6
    sample_dfs(GMM.denoiser(), x, torch.linspace(6.0, 0.0, 11), score_fn=RARE, generator=torch.Generator(),
               config=DFSConfig(delta=math.inf, nfe_budget=budget, backtrack_steps=4), local=local, trace=res)
    assert all(dive <= n <= budget for n in res.nfe_per_item), res.nfe_per_item
    assert max(res.nfe_per_item) > dive  # it did backtrack


def test_local_apply_steps_inside_dfs():
    from search_core import LangevinConfig
    calls = []
    guide = _counted(RARE, calls)
    local = LangevinConfig(mu=0.1, recur_steps=1, apply_steps=[3, 7])
    res = Trace()
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1)) * 6
    sample_dfs(GMM.denoiser(), x, torch.linspace(6.0, 0.0, 11), score_fn=RARE, guide_fn=guide,
               generator=torch.Generator(), config=DFSConfig(delta=-math.inf), local=local, trace=res)
    # no backtracking: each item takes 10 steps, 2 of them guided, each guided step 1 + 1 recurrence
    assert res.nfe_per_item == [12] * 4
    assert res.grad_evals == 4 * 2 * 2


def test_verifier_is_called_only_at_checked_steps():
    calls = []
    score = _counted(RARE, calls)
    res = Trace()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(2)) * 6
    sample_dfs(GMM.denoiser(), x, torch.linspace(6.0, 0.0, 11), score_fn=score, generator=torch.Generator(),
               config=DFSConfig(delta=-math.inf, check_steps=[4, 6]), trace=res)
    assert sum(calls) == 5 * 3 and res.score_evals == 15  # steps 4, 6 and the complete sample


def test_backtracking_escalates_when_retries_keep_failing():
    """Retries that fail again at the same level go ΔT·growth^k steps up, so a wrong mode can be left."""
    _, res, events = _run(math.inf, budget=60, n_items=2, backtrack_growth=2.0, check_steps=[9])
    backs = [e for e in events if e["type"] == "backtrack" and e["item"] == 0]
    jumps = [e["step_from"] - e["step_to"] for e in backs]
    assert jumps == [4, 8, 9, 9, 9], jumps
    _, res, events = _run(math.inf, budget=60, n_items=2, backtrack_growth=1.0, check_steps=[9])
    jumps = [e["step_from"] - e["step_to"] for e in events if e["type"] == "backtrack" and e["item"] == 0]
    assert set(jumps) <= {4}


def test_the_last_step_is_checked_whatever_check_from_says():
    """check_from beyond the last step still judges the complete sample (what the node's tooltip says)."""
    _, res, events = _run(math.inf, budget=30, check_from=100)
    backs = [e for e in events if e["type"] == "backtrack"]
    assert backs and all(e["step_from"] == 9 for e in backs)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_rewards_raise_instead_of_steering_the_dive(bad):
    with pytest.raises(ValueError, match="NaN/inf rewards"):
        _run(0.0, reward=lambda z: torch.full((z.shape[0],), bad))
