"""Presets that do what their sources do (issue 9): TreeG's rank rule, the paper's ramp and final resampling,
float64 weights, per-item extra_args, the callback's σ and the eta = 0 warning."""
import logging
import math

import pytest
import torch

from search_core import BFSConfig, DFSConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local
from search_core.schedules import temperature
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])
SIGMAS = torch.linspace(6.0, 0.0, 9)


def _x(n=3, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) * SIGMAS[0]


def test_treeg_keeps_the_best_half_at_every_step_whatever_lambda():
    """TreeG: best A of A·K by score at every step; the rule has no temperature, so λ cannot change the output."""
    cfg = get_preset("treeg")
    assert cfg.resample_every == 1
    outs = []
    for lam in (1.0, 1e4):
        res = Trace()
        outs.append(sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD,
                               generator=torch.Generator().manual_seed(1), n_particles=8, config=cfg.replace(lam=lam),
                               trace=res))
        steps = [e for e in res.events if e["type"] == "step" and e["resampled"]]
        assert len(steps) == 7
        for e in steps:
            for scores, counts in zip(e["scores"], e["counts"]):
                kept = {i for i, c in enumerate(counts) if c > 0}
                best = set(sorted(range(8), key=lambda i: -scores[i])[:4])
                assert kept == best and all(c in (0, 2) for c in counts)
    assert torch.equal(outs[0], outs[1])


def test_huge_rewards_do_not_fail_as_zero_weight():
    """λ·r = 1e38-scale in float32 overflows; the weights are formed in float64 and the search runs."""
    huge = lambda z: 1e37 * torch.tanh(REWARD(z))  # noqa: E731
    for preset in ("fk", "bfs", "das"):
        out = sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=huge, generator=torch.Generator().manual_seed(2),
                         n_particles=4, config=get_preset(preset, lam=100.0))
        assert torch.isfinite(out).all()
    neg = lambda z: -1e37 * (2 + torch.tanh(REWARD(z)))  # noqa: E731
    out = sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=neg, generator=torch.Generator().manual_seed(2),
                     n_particles=4, config=BFSConfig(temperature="constant", scoring="current", lam=100.0))
    assert torch.isfinite(out).all()


def test_paper_temperature_ramp():
    """λ_t = λ(exp(γ·t) − 1), γ = 0.008 per step of 100: 0.17, 0.38, 0.61, 0.89 λ at 20/40/60/80, scaled to T."""
    cfg = get_preset("bfs")
    assert cfg.temperature == "increase_paper" and cfg.final_ess_threshold == 0.5
    for steps in (100, 50, 25):
        got = [temperature(cfg, round(f * steps) - 1, steps) / cfg.lam for f in (0.2, 0.4, 0.6, 0.8)]
        assert got == pytest.approx([0.1735, 0.3771, 0.6161, 0.8965], abs=1e-3)


def test_bfs_final_resampling_is_ess_conditioned():
    """The paper's final step: resample multinomially only when ESS < 0.5 N, then pick the best."""
    def final_event(lam):
        res = Trace()
        sample_bfs(GMM.denoiser(), _x(20), SIGMAS, score_fn=REWARD, generator=torch.Generator().manual_seed(3),
                   n_particles=8, config=get_preset("bfs", lam=lam), trace=res)
        return res, res.events[-1]
    res, final = final_event(0.0)  # λ = 0: equal weights, ESS = N: nothing resampled
    assert final["resampled"] == [False] * 20
    res, final = final_event(50.0)
    assert any(final["resampled"]) and len(final["ess"]) == 20
    for item, done in enumerate(final["resampled"]):
        if done:
            assert final["ess"][item] < 4.0
    assert torch.allclose(res.rewards.max(1).values, REWARD(res.samples))


class LabelledModel:
    """A class-conditional denoiser that insists on one label per row (like a user's own model)."""

    def __init__(self):
        self.rows = []

    def __call__(self, x, sigma, labels=None, scale=None, note=None):
        assert labels is not None and labels.shape == (x.shape[0],), (labels.shape, x.shape)
        assert scale.shape == (x.shape[0], 1)
        self.rows.append(labels.clone())
        shift = torch.stack([labels.float(), torch.zeros_like(labels, dtype=torch.float32)], 1) * scale
        return GMM.posterior_mean(x - shift, sigma, "eps") + shift


@pytest.mark.parametrize("sampler", ["bfs", "local", "dfs"])
def test_per_item_extra_args_follow_the_particles(sampler):
    model, labels = LabelledModel(), torch.tensor([0, 5, 10])
    extra = {"labels": labels, "scale": torch.ones(3, 1), "note": "kept as is"}
    g = torch.Generator().manual_seed(4)
    if sampler == "bfs":
        out = sample_bfs(model, _x(), SIGMAS, extra, score_fn=REWARD, generator=g, n_particles=4,
                         config=get_preset("bfs"))
    elif sampler == "local":
        out = sample_local(model, _x(), SIGMAS, extra, guide_fn=REWARD, generator=g, n_particles=2)
    else:
        out = sample_dfs(model, _x(), SIGMAS, extra, score_fn=lambda z: -z[:, 0].abs(), generator=g,
                         config=DFSConfig(delta=-0.5, nfe_budget=30, check_from=2, backtrack_steps=4))
    assert out.shape == (3, 2)
    assert (out[:, 0] - labels.float()).abs().max() < 4.0  # each item denoised under its own label
    if sampler == "dfs":
        assert any(r.numel() < 3 for r in model.rows)  # some calls ran a subset of the items


def test_callback_reports_x_at_the_reported_sigma():
    """The callback's x is the state the step's x0 was predicted from, at the σ it reports (k-diffusion)."""
    seen = []
    for sampler in ("bfs", "local"):
        seen.clear()
        kwargs = dict(generator=torch.Generator().manual_seed(5), callback=seen.append)
        if sampler == "bfs":
            sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, n_particles=4, config=get_preset("fk"), **kwargs)
        else:
            sample_local(GMM.denoiser(), _x(), SIGMAS, guide_fn=REWARD, n_particles=1,
                         config=None, **kwargs)
        assert len(seen) == 8
        for info in seen:
            sigma = info["sigma"].expand(3)
            if sampler == "bfs":
                assert torch.allclose(GMM.posterior_mean(info["x"], sigma), info["denoised"], atol=1e-5)
            assert float(info["sigma"]) == float(SIGMAS[info["i"]])


@pytest.mark.parametrize("preset", ["svdd", "treeg", "fk"])
def test_eta_zero_with_resampling_warns_once(preset, caplog):
    with caplog.at_level(logging.WARNING, logger="search_core"):
        sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, generator=torch.Generator(), n_particles=4,
                   config=get_preset(preset), eta=0.0)
    hits = [r for r in caplog.records if "eta" in r.getMessage() and "stochastic" in r.getMessage()]
    assert len(hits) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="search_core"):
        sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, generator=torch.Generator(), n_particles=4,
                   config=get_preset("best_of_n"), eta=0.0)
        sample_bfs(GMM.denoiser(), _x(), SIGMAS, score_fn=REWARD, generator=torch.Generator(), n_particles=4,
                   config=get_preset(preset), eta=1.0)
    assert not [r for r in caplog.records if "stochastic" in r.getMessage()]
