"""Contract of sample_bfs: shapes, NFE accounting, trace contents, determinism, errors, dual verifiers, chunking."""
import json

import pytest
import torch

from search_core import PRESETS, BFSConfig, Trace, get_preset, sample_bfs
from search_core.noise import ancestral_step, randn_like
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])


def _setup(n_items=3, steps=8, seed=0, noise_form="eps"):
    sigmas = torch.linspace(6.0, 0.0, steps + 1) if noise_form == "eps" else torch.linspace(1.0, 0.0, steps + 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_items, 2, generator=g) * sigmas[0]
    return GMM.denoiser(noise_form), x, sigmas


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("noise_form", ["eps", "flow"])
def test_contract_of_every_preset(preset, noise_form):
    model, x, sigmas = _setup(noise_form=noise_form)
    events = []
    res = Trace(on_event=events.append)
    out = sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(1), n_particles=4,
                     config=get_preset(preset), noise_form=noise_form, trace=res)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert res.nfe == 3 * 4 * 8 and res.nfe_per_item == [32, 32, 32]
    assert res.particles.shape == (3, 4, 2) and res.rewards.shape == (3, 4) and res.order.shape == (3, 4)
    assert torch.equal(out, res.samples)
    if PRESETS[preset].final_pick == "best":
        assert torch.allclose(res.rewards.max(1).values, REWARD(out))
    else:  # a draw ∝ the final weight: one of the final particles
        assert all(any(torch.equal(out[b], p) for p in res.particles[b]) for b in range(3))
    assert events == res.events and [e["type"] for e in events][0] == "start" and events[-1]["type"] == "final"
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(8)) and all(e["algorithm"] == "bfs" for e in events)
    for e in steps:
        if e["resampled"]:
            assert all(sum(c) == 4 for c in e["counts"]) and len(e["ancestors"]) == 3
            assert all(abs(sum(w) - 1) < 1e-6 for w in e["weights"])
        else:
            assert e["scores"] is None and e["ancestors"] is None
    assert any(e["resampled"] for e in steps) == (preset != "best_of_n")
    json.loads(res.to_json())


def test_same_generator_same_output_and_different_seed_differs():
    model, x, sigmas = _setup()
    runs = [sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(s),
                       n_particles=5, config=get_preset("fk")) for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_one_particle_is_the_plain_ancestral_sampler():
    model, x, sigmas = _setup()
    out = sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(3), n_particles=1,
                     config=get_preset("best_of_n"))
    g, ref = torch.Generator().manual_seed(3), x.clone()
    for i in range(8):
        ref = ancestral_step(ref, model(ref, sigmas[i].expand(3)), float(sigmas[i]), float(sigmas[i + 1]),
                             randn_like(ref, g), "eps")
    assert torch.allclose(out, ref, atol=1e-6)


def test_search_beats_best_of_n_statistically():
    model, _, sigmas = _setup(steps=12)
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(4)) * sigmas[0]
    def run(preset):  # both pick the best final particle: the search's population is better
        out = sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(5),
                         n_particles=8, config=PRESETS[preset].replace(lam=2.0, resample_every=3, final_pick="best"))
        r = REWARD(out)
        return r.mean(), r.std() / 300 ** 0.5
    (bon, se_b), (fk, se_f) = run("best_of_n"), run("fk")
    assert fk - bon > 3 * (se_b ** 2 + se_f ** 2) ** 0.5


def test_nan_rewards_and_bad_inputs_raise():
    model, x, sigmas = _setup()
    g = torch.Generator().manual_seed(0)
    nan_fn = lambda z: torch.full((z.shape[0],), float("nan"))  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        sample_bfs(model, x, sigmas, score_fn=nan_fn, generator=g, n_particles=2)
    with pytest.raises(ValueError, match="n_particles"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=g, n_particles=0)
    with pytest.raises(ValueError, match="decreasing"):
        sample_bfs(model, x, sigmas.flip(0), score_fn=REWARD, generator=g)
    with pytest.raises(ValueError, match="torch.Generator"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=0)
    with pytest.raises(ValueError, match="resampling"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=g, config=BFSConfig(resampling="magic"))
    with pytest.raises(ValueError, match="one reward per particle"):
        sample_bfs(model, x, sigmas, score_fn=lambda z: z, generator=g, n_particles=3)


def test_dual_verifiers_route_the_calls():
    model, x, sigmas = _setup()
    calls = {"score": 0, "select": 0}
    def counted(name):
        def fn(z):
            calls[name] += z.shape[0]
            return REWARD(z)
        return fn
    cfg = BFSConfig(resample_steps=[2, 5])
    sample_bfs(model, x, sigmas, score_fn=counted("score"), select_fn=counted("select"), generator=torch.Generator(),
               n_particles=4, config=cfg, select_for="final")
    assert calls == {"score": 2 * 12, "select": 12}
    calls.update(score=0, select=0)
    sample_bfs(model, x, sigmas, score_fn=counted("score"), select_fn=counted("select"), generator=torch.Generator(),
               n_particles=4, config=cfg, select_for="resample_and_final")
    assert calls == {"score": 0, "select": 3 * 12}


def test_chunking_and_out_of_memory_retry_keep_the_result():
    model, x, sigmas = _setup()
    def fragile(xb, s):
        if xb.shape[0] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return model(xb, s)
    ref = sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(2), n_particles=4)
    for m, mb in ((fragile, None), (model, 3)):
        out = sample_bfs(m, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(2), n_particles=4,
                         max_batch=mb)
        assert torch.allclose(out, ref, atol=1e-6)


def test_callback_ess_threshold_and_config_event():
    model, x, sigmas = _setup()
    seen, res = [], Trace()
    sample_bfs(model, x, sigmas, callback=seen.append, score_fn=REWARD, generator=torch.Generator(), n_particles=4,
               config=BFSConfig(ess_threshold=0.05, resample_every=2, lam=1.0), trace=res)
    assert [c["i"] for c in seen] == list(range(8)) and seen[0]["denoised"].shape == x.shape
    steps = [e for e in res.events if e["type"] == "step" and e["resampled"]]
    # ESS >= 0.05 N always (ESS >= 1 > 0.2): nobody is resampled
    assert all(a == [0, 1, 2, 3] for e in steps for a in e["ancestors"])
    start = res.events[0]
    assert start["config"]["resample_at"] == [1, 3, 5] and start["n_particles"] == 4
