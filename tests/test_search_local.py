"""Langevin local search alone and inside BFS / DFS: gradient accounting, effect on reward, dual verifiers."""
import pytest
import torch

from search_core import DFSConfig, LangevinConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])
SIGMAS = torch.linspace(6.0, 0.0, 9)


def _x(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) * SIGMAS[0]


@pytest.mark.parametrize("grad_mode", ["x0", "denoiser"])
def test_local_search_accounting_and_reward(grad_mode):
    cfg = LangevinConfig(grad_mode=grad_mode, rho=0.2, mu=0.3, steps=2, recur_steps=1)
    res = Trace()
    out = sample_local(GMM.denoiser(), _x(), SIGMAS, guide_fn=REWARD, generator=torch.Generator().manual_seed(1),
                       config=cfg, trace=res)
    plain = sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, generator=torch.Generator().manual_seed(1),
                       n_particles=1, config=get_preset("best_of_n"))
    assert out.shape == (64, 2)
    assert res.nfe == 64 * 8 * 2  # one denoiser call per guided step, (1 + recur_steps) per level
    assert res.grad_evals == 64 * 8 * 2 * (2 + (grad_mode == "denoiser"))
    assert res.denoiser_grad_evals == (64 * 8 * 2 if grad_mode == "denoiser" else 0)
    assert REWARD(out).mean() > REWARD(plain).mean() + 0.5
    local = [e for e in res.events if e["type"] == "local"]
    assert len(local) == 8 and all(e["algorithm"] == "local" for e in res.events)
    assert len(local[0]["reward_before"]) == 64 and len(local[0]["reward_before"][0]) == 1


def test_local_inside_bfs_and_dfs_and_dual_selection():
    spike = lambda z: REWARD(z) + 50.0 * torch.exp(-((z - torch.tensor([3.0, 0.0])) ** 2).sum(1) / 0.02)  # noqa
    cfg = LangevinConfig(mu=0.2, recur_steps=0, start_step=4)
    res = Trace()
    out = sample_bfs(GMM.denoiser(), _x(8), SIGMAS, score_fn=REWARD, guide_fn=REWARD, select_fn=spike,
                     generator=torch.Generator(), n_particles=4, local=cfg, trace=res, config=get_preset("bfs"))
    assert torch.allclose(spike(out), res.rewards.max(1).values)  # the selecting verifier picked
    assert [e["step"] for e in res.events if e["type"] == "local"] == [4, 5, 6, 7]
    res = Trace()
    out = sample_dfs(GMM.denoiser(), _x(8), SIGMAS, score_fn=REWARD, generator=torch.Generator(),
                     config=DFSConfig(delta=1.0, nfe_budget=16), local=cfg, trace=res)
    assert out.shape == (8, 2) and res.grad_evals > 0 and max(res.nfe_per_item) <= 16


def test_nan_gradient_raises():
    bad = lambda z: (z * torch.tensor([float("inf"), 0.0])).sum(1) * 0 + z.sum(1) ** 0.5  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        sample_local(GMM.denoiser(), -_x(4).abs(), SIGMAS, guide_fn=bad, generator=torch.Generator())


@pytest.mark.parametrize("recur_steps", [0, 2])
def test_local_events_report_the_reward_after_the_langevin_steps(recur_steps):
    """Each level's 'after' is the guide reward of the guided x0: with a linear reward, μ·steps·|∇r|² higher."""
    cfg = LangevinConfig(mu=0.25, steps=2, recur_steps=recur_steps)
    res = Trace()
    sample_local(GMM.denoiser(), _x(16), SIGMAS, guide_fn=REWARD, generator=torch.Generator().manual_seed(2),
                 config=cfg, trace=res)
    local = [e for e in res.events if e["type"] == "local"]
    assert len(local) == 8
    for event in local:
        before = torch.tensor(event["reward_before"]).flatten()
        after = torch.tensor(event["reward_after"]).flatten()
        assert torch.isfinite(after).all()
        if recur_steps == 0:  # x0 moves by μ·∇r twice along (0, 1): the reward rises by exactly 2·μ
            assert torch.allclose(after - before, torch.full_like(before, 0.5), atol=1e-4)


class _Counting:
    """A guide that counts the rows it scores and the largest call."""

    def __init__(self, fn):
        self.fn, self.rows, self.largest = fn, 0, 0

    def __call__(self, z):
        self.rows += z.shape[0]
        self.largest = max(self.largest, z.shape[0])
        return self.fn(z)


@pytest.mark.parametrize("algorithm", ["local", "bfs"])
def test_report_gain_off_skips_one_verifier_pass_and_changes_nothing_else(algorithm):
    runs = {}
    for report in (True, False):
        guide, res = _Counting(REWARD), Trace()
        cfg = LangevinConfig(mu=0.25, steps=1, recur_steps=1, report_gain=report)
        common = dict(generator=torch.Generator().manual_seed(4), trace=res)
        if algorithm == "local":
            out = sample_local(GMM.denoiser(), _x(8), SIGMAS, guide_fn=guide, config=cfg, n_particles=2, **common)
        else:
            out = sample_bfs(GMM.denoiser(), _x(8), SIGMAS, score_fn=REWARD, guide_fn=guide, local=cfg,
                             n_particles=2, config=get_preset("bfs"), **common)
        runs[report] = (out, guide.rows, [e for e in res.events if e["type"] == "local"])
    (out_on, rows_on, local_on), (out_off, rows_off, local_off) = runs[True], runs[False]
    assert torch.equal(out_on, out_off)                 # the search is the same
    assert rows_on - rows_off == 16 * 8 * 2             # one pass per particle, level and recurrence
    assert all(e["reward_after"] is not None for e in local_on)
    assert all(e["reward_after"] is None and e["reward_before"] is not None for e in local_off)


def test_dfs_never_scores_the_guided_x0_for_a_report():
    """DFS reads no local event, so its guided steps cost the gradient passes only."""
    guide, res = _Counting(REWARD), Trace()
    sample_dfs(GMM.denoiser(), _x(4), SIGMAS, score_fn=REWARD, guide_fn=guide, generator=torch.Generator(),
               config=DFSConfig(delta=-100.0, nfe_budget=16), local=LangevinConfig(mu=0.2, recur_steps=1),
               trace=res)
    assert guide.rows == res.grad_evals > 0             # gradient rows only, no extra forward pass


def test_row_limited_guide_gets_at_most_its_rows_per_gradient_call():
    from search_core.chunking import RowLimited
    guide = _Counting(REWARD)
    limited, res = RowLimited(guide, 3), Trace()
    out = sample_local(GMM.denoiser(), _x(8), SIGMAS, guide_fn=limited, generator=torch.Generator().manual_seed(5),
                       config=LangevinConfig(mu=0.25, report_gain=False), n_particles=2, trace=res)
    whole = sample_local(GMM.denoiser(), _x(8), SIGMAS, guide_fn=REWARD, generator=torch.Generator().manual_seed(5),
                         config=LangevinConfig(mu=0.25, report_gain=False), n_particles=2)
    assert guide.largest == 3 and guide.rows == res.grad_evals + res.score_evals   # + the final pick
    assert torch.allclose(out, whole, atol=1e-6)        # chunking changes the calls, not the result
    with pytest.raises(ValueError, match="max_rows"):
        RowLimited(REWARD, 0)
