"""Langevin local search alone and inside BFS / DFS: gradient accounting, effect on reward, dual verifiers."""
import pytest
import torch

from search_core import DFSConfig, LangevinConfig, SearchResult, sample_bfs, sample_dfs, sample_local
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])
SIGMAS = torch.linspace(6.0, 0.0, 9)


def _x(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) * SIGMAS[0]


@pytest.mark.parametrize("grad_mode", ["x0", "denoiser"])
def test_local_search_accounting_and_reward(grad_mode):
    cfg = LangevinConfig(grad_mode=grad_mode, rho=0.2, mu=0.3, steps=2, recur_steps=1)
    res = SearchResult()
    out = sample_local(GMM.denoiser(), _x(), SIGMAS, guide_fn=REWARD, generator=torch.Generator().manual_seed(1),
                       config=cfg, result=res)
    plain = sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, generator=torch.Generator().manual_seed(1),
                       n_particles=1, preset="best_of_n")
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
    res = SearchResult()
    out = sample_bfs(GMM.denoiser(), _x(8), SIGMAS, score_fn=REWARD, guide_fn=REWARD, select_fn=spike,
                     generator=torch.Generator(), n_particles=4, local=cfg, result=res, preset="bfs")
    assert torch.allclose(spike(out), res.rewards.max(1).values)  # the selecting verifier picked
    assert [e["step"] for e in res.events if e["type"] == "local"] == [4, 5, 6, 7]
    res = SearchResult()
    out = sample_dfs(GMM.denoiser(), _x(8), SIGMAS, score_fn=REWARD, generator=torch.Generator(),
                     config=DFSConfig(delta=1.0, nfe_budget=16), local=cfg, result=res)
    assert out.shape == (8, 2) and res.grad_evals > 0 and max(res.nfe_per_item) <= 16


def test_nan_gradient_raises():
    bad = lambda z: (z * torch.tensor([float("inf"), 0.0])).sum(1) * 0 + z.sum(1) ** 0.5  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        sample_local(GMM.denoiser(), -_x(4).abs(), SIGMAS, guide_fn=bad, generator=torch.Generator())


@pytest.mark.parametrize("recur_steps", [0, 2])
def test_local_events_report_the_reward_after_the_langevin_steps(recur_steps):
    """Each level's 'after' is the guide reward of the guided x0: with a linear reward, μ·steps·|∇r|² higher."""
    cfg = LangevinConfig(mu=0.25, steps=2, recur_steps=recur_steps)
    res = SearchResult()
    sample_local(GMM.denoiser(), _x(16), SIGMAS, guide_fn=REWARD, generator=torch.Generator().manual_seed(2),
                 config=cfg, result=res)
    local = [e for e in res.events if e["type"] == "local"]
    assert len(local) == 8
    for event in local:
        before = torch.tensor(event["reward_before"]).flatten()
        after = torch.tensor(event["reward_after"]).flatten()
        assert torch.isfinite(after).all()
        if recur_steps == 0:  # x0 moves by μ·∇r twice along (0, 1): the reward rises by exactly 2·μ
            assert torch.allclose(after - before, torch.full_like(before, 0.5), atol=1e-4)
