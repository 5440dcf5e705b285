"""BFS as sequential Monte Carlo, checked against the exact tilted target p0·exp(λ·r)/Z (issue 9).

The instance: the 3-mode testbed mixture and the linear reward r = x₂ at λ = 1, whose tilt is an exact mixture in
which the rare mode (weight 0.05) holds about half the mass. A consistent sampler's energy distance to it falls as N
grows; the `fk` and `das` presets and BFS with an ESS threshold must do what the consistent SMC point does.
"""
import math

import pytest
import torch

from search_core import BFSConfig, Trace, get_preset, sample_bfs
from search_core.schedules import temperature
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])
LAM = 1.0
TARGET = GMM.tilted_linear(REWARD.direction, LAM)
STEPS = 24
ITEMS = 1200
SIGMAS = torch.cat([torch.exp(torch.linspace(math.log(8.0), math.log(0.05), STEPS)), torch.zeros(1)])


def _energy(a, b):
    a, b = a.double(), b.double()
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def _run(config, n, seed=0, items=ITEMS):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(items, 2, generator=g) * SIGMAS[0]
    return sample_bfs(GMM.denoiser(), x, SIGMAS, score_fn=REWARD, generator=g, n_particles=n, config=config)


_OUTPUTS = {}


def _distances(config, sizes=(4, 16, 64), seed=0, items=ITEMS):
    target = TARGET.sample(3000, torch.Generator().manual_seed(100 + seed))
    for n in sizes:
        _OUTPUTS[(config.name, n)] = _run(config, n, seed, items)
    return {n: _energy(_OUTPUTS[(config.name, n)], target) for n in sizes}


def _rare_share(samples):
    return float((samples[:, 1] > 1.5).float().mean())


SMC = BFSConfig(name="smc", temperature="constant", lam=LAM, scoring="difference", resampling="ssp",
                resample_every=4, final_pick="sample", final_weight="corrected")
CONFIGS = {
    "fk": get_preset("fk", lam=LAM, resample_every=4),
    "das": get_preset("das", lam=LAM),
    "bfs+ess": get_preset("bfs", lam=LAM, resample_every=4, ess_threshold=0.5, final_pick="sample",
                          final_weight="corrected"),
}
_REFERENCE = {}


def _smc_at_64():
    if not _REFERENCE:
        _REFERENCE.update(_distances(SMC, sizes=(64,)))
    return _REFERENCE[64]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_preset_converges_to_the_tilted_target_like_the_smc_point(name):
    """Energy distance falls 4 -> 16 -> 64 and at N = 64 is within noise of the consistent SMC point."""
    got, ref = _distances(CONFIGS[name]), _smc_at_64()
    # at N = 64 the SMC point is at ~0.08 (24 Euler steps, ~1/N bias); one distance at 1200 samples varies by
    # ~0.02-0.03 between seeds. The versions before the fix sat at 0.3-1.1 at N = 64.
    assert got[4] > got[16] + 0.1 and got[16] > got[64] + 0.02, got
    assert got[64] < ref + 0.07, (got, ref)  # no worse than the SMC point beyond noise (fk is closer: ~0.01)
    # the tilt moves the 0.05 mode to ~half the mass; DAS before the fix kept it at 0.15-0.2
    share, smc_share = _rare_share(_OUTPUTS[(CONFIGS[name].name, 64)]), _rare_share(_OUTPUTS[("smc", 64)])
    assert 0.3 < share < float(TARGET.weights[2]) + 0.1, (share, smc_share)


def test_fk_without_its_correction_moves_away():
    """FK's potentials exp(λ·max r) tilt once per resampling: without the final correction the draw overshoots."""
    plain = CONFIGS["fk"].replace(final_weight="score")
    got = _distances(plain, sizes=(16, 64), items=400)
    assert got[64] > got[16] + 0.2 and got[64] > 0.5, got


def _replay(events, config, n_steps):
    """Rebuild the log-weights from the trace alone (tempered potentials, carried weights) and compare."""
    steps = [e for e in events if e["type"] == "step" and e["scores"] is not None]
    n_items, n = len(steps[0]["scores"]), len(steps[0]["scores"][0])
    logw = torch.zeros(n_items, n, dtype=torch.float64)
    prev_pot = torch.zeros(n_items, n, dtype=torch.float64)   # λ_s·r_s of each particle's path (difference)
    run_max = torch.full((n_items, n), -math.inf if config.reward_floor is None else config.reward_floor,
                         dtype=torch.float64)
    for e in steps:
        r = torch.tensor(e["scores"], dtype=torch.float64)
        lam = temperature(config, e["step"], n_steps)
        assert lam == pytest.approx(e["temperature"])
        if config.scoring == "difference":
            pot = lam * r - prev_pot
            prev_pot = lam * r
        elif config.scoring == "max":
            run_max = torch.maximum(run_max, r)
            pot = lam * run_max
        else:
            pot = lam * r
        logw = logw + pot
        assert torch.allclose(torch.softmax(logw, 1), torch.tensor(e["weights"], dtype=torch.float64), atol=1e-9)
        anc = torch.tensor(e["ancestors"])
        done = torch.tensor(e["resampled_items"])
        logw = torch.where(done[:, None], torch.zeros_like(logw), logw.gather(1, anc))
        prev_pot, run_max = prev_pot.gather(1, anc), run_max.gather(1, anc)
    return steps


@pytest.mark.parametrize("config", [
    get_preset("das", lam=3.0, ess_threshold=0.5),                                   # item 1: tempered difference
    get_preset("fk", lam=3.0, resample_every=2),                                      # item 2: floored running max
    BFSConfig(temperature="constant", lam=0.5, scoring="difference", resample_every=1, ess_threshold=0.5),  # item 3
    get_preset("bfs", lam=3.0, resample_every=3, ess_threshold=0.6),
], ids=["das", "fk", "smc+ess", "bfs+ess"])
def test_weights_replay_from_the_trace(config):
    res = Trace()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 2, generator=g) * SIGMAS[0]
    sample_bfs(GMM.denoiser(), x, SIGMAS, score_fn=lambda z: REWARD(z) - 1.0, generator=g, n_particles=8,
               config=config, trace=res)
    steps = _replay(res.events, config, STEPS)
    if config.ess_threshold is not None:  # some items kept their weights at some step: the carry was exercised
        assert any(not all(e["resampled_items"]) for e in steps)


def test_fk_floors_the_running_max_at_reward_min_value():
    """FK's running max starts at reward_min_value = 0: with all rewards negative every weight is equal."""
    assert get_preset("fk").reward_floor == 0.0
    res = Trace()
    g = torch.Generator().manual_seed(5)
    sample_bfs(GMM.denoiser(), torch.randn(3, 2, generator=g) * 8, SIGMAS, score_fn=lambda z: REWARD(z) - 100.0,
               generator=g, n_particles=5, config=get_preset("fk", resample_every=3), trace=res)
    for e in res.events:
        if e["type"] == "step" and e["scores"] is not None:
            assert torch.allclose(torch.tensor(e["weights"], dtype=torch.float64), torch.full((3, 5), 0.2,
                                                                                          dtype=torch.float64))


def test_ess_threshold_keeps_the_tilt():
    """With a threshold that single steps never cross, the carried weights still cross it: the tilt is kept."""
    cfg = BFSConfig(temperature="constant", lam=LAM, scoring="difference", resampling="ssp", resample_every=1,
                    ess_threshold=0.3, final_pick="sample", final_weight="corrected")
    out = _run(cfg, 16, seed=6)
    base = _run(get_preset("best_of_n", final_pick="sample", lam=0.0), 1, seed=6)
    share, base_share = _rare_share(out), _rare_share(base)
    assert share > base_share + 0.12, (share, base_share)  # without the carry: the base's 0.04
