"""SoP, DSearch, DSearch-R and progressive seed pruning: each equals a straightforward per-item implementation written
from its source's description on the exact GMM testbed (same seeds, same answer), NFE exact, deterministic, traces."""
import math

import pytest
import torch

from search_core import Trace, get_preset, sample_bfs
from search_core.beam import beam_widths
from search_core.sop import sop_levels
from search_core.testbed import LinearReward, standard_mixture

torch.set_num_threads(1)
GMM = standard_mixture()
REWARD = LinearReward([0.3, 1.0])
BASELINES = ("sop", "dsearch", "dsearch_r", "seed_pruning")


def _setup(noise_form, steps=12, n_items=3, seed=0):
    sigmas = torch.linspace(6.0, 0.0, steps + 1) if noise_form == "eps" else torch.linspace(1.0, 0.0, steps + 1)
    g = torch.Generator().manual_seed(seed)
    return GMM.denoiser(noise_form), torch.randn(n_items, 2, generator=g) * sigmas[0], sigmas


def _a(sigma, noise_form):
    return 1.0 if noise_form == "eps" else 1.0 - sigma


def _denoise(model, x, sigma):
    return model(x[None], torch.tensor([sigma]))[0]


def _step(x, x0, s, s_next, eps, noise_form, eta):
    """DDIM / ancestral step written out: x_next = a'·x0 + σ'·(c_down·ε̂ + c_up·ε), ε̂ = (x − a·x0)/σ."""
    a, a_next = _a(s, noise_form), _a(s_next, noise_form)
    ratio = s_next * a / (max(a_next, 1e-12) * s)   # s'/s with s = σ/a; 0 at the flow form's σ = 1
    c_up = eta * math.sqrt(max(0.0, 1 - ratio * ratio))
    c_down = math.sqrt(max(0.0, 1 - c_up * c_up))
    eps_hat = (x - a * x0) / s
    out = a_next * x0 + s_next * c_down * eps_hat
    return out if eps is None else out + s_next * c_up * eps


def _starts(x, width, sigma0, g):
    """Particle 0 keeps the given noise, the others σ0·ε (item-major draws)."""
    b, d = x.shape
    fresh = torch.randn(b * (width - 1), d, generator=g) * sigma0
    return [[x[i]] + [fresh[i * (width - 1) + j] for j in range(width - 1)] for i in range(b)]


def _run(preset, noise_form, n=4, seed=5, steps=12, n_items=3, **overrides):
    model, x, sigmas = _setup(noise_form, steps, n_items)
    events = []
    res = Trace(on_event=events.append)
    out = sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator().manual_seed(seed), n_particles=n,
                     config=get_preset(preset, **overrides), noise_form=noise_form, trace=res)
    return out, res, events


def reference_sop(noise_form, n, seed, steps, cfg):
    """SoP as Ma et al. sec. 3.2 describes it, one item and one candidate at a time."""
    model, x, sigmas = _setup(noise_form, steps)
    s = sigmas.tolist()
    t = [v / (1 + v) if noise_form == "eps" else v for v in s]
    nearest = lambda v: min(range(len(t)), key=lambda i: (abs(t[i] - v), i))  # noqa: E731
    g = torch.Generator().manual_seed(seed)
    pops = _starts(x, n, s[0], g)
    k = min(max(1, nearest(cfg.start)), steps)
    nfe = 0
    for j in range(k):                         # ODE-solve the N starts to the start level
        for pop in pops:
            for p in range(n):
                pop[p] = _step(pop[p], _denoise(model, pop[p], s[j]), s[j], s[j + 1], None, noise_form, 0.0)
                nfe += 1
    final = None
    while k < steps:
        up = min(nearest(t[k] + cfg.forward), k - 1)
        down = min(max(nearest(t[k] + cfg.forward - cfg.backward), k + 1), steps)
        eps = torch.randn(len(pops) * n * cfg.branches, 2, generator=g)
        new = []
        for b, pop in enumerate(pops):
            cands = []
            for p in range(n):
                for m in range(cfg.branches):
                    e = eps[(b * n + p) * cfg.branches + m]
                    scale = _a(s[up], noise_form) / _a(s[k], noise_form)
                    z = scale * pop[p] + math.sqrt(s[up] ** 2 - (scale * s[k]) ** 2) * e   # q(x_up | x_k)
                    for j in range(up, down):
                        x0 = _denoise(model, z, s[j])
                        z = _step(z, x0, s[j], s[j + 1], None, noise_form, 0.0)
                        nfe += 1
                    cands.append((float(REWARD(x0[None])), z))
            ranked = sorted(range(len(cands)), key=lambda c: -cands[c][0])[:n]
            new.append([cands[c][1] for c in ranked] if down < steps else cands)
            if down == steps:
                final = final or []
                final.append(max((cands[c] for c in ranked), key=lambda rc: rc[0])[1])
        pops, k = new, down
    return torch.stack(final), nfe


def reference_beam(noise_form, n, seed, steps, cfg):
    """DSearch (sd_pipeline.py's loop) / seed pruning, one member at a time; widths from the source's formulas."""
    model, x, sigmas = _setup(noise_form, steps)
    s = sigmas.tolist()
    g = torch.Generator().manual_seed(seed)
    span = steps - 1
    w0 = max(n, math.ceil(cfg.oversample * n - 1e-9))
    if cfg.drop_schedule == "exponential":
        widths = [max(n, int(w0 * (n / w0) ** (i / span))) for i in range(span)]
    elif cfg.drop_schedule == "none":
        widths = [w0] * span
    else:   # "steps": prune after the x0 call at round(p·T) − 1
        widths, w = [], w0
        for i in range(span):
            for p, kk in zip(cfg.prune_at, cfg.keep):
                if round(p * steps) - 1 == i + 1:
                    w = min(w, max(1, math.ceil(kk * n)))
            widths.append(w)
    pops = _starts(x, w0, s[0], g)
    x0s = [[_denoise(model, z, s[0]) for z in pop] for pop in pops]
    nfe, width = len(pops) * w0, w0
    for i in range(span):
        kids_per = cfg.children
        if cfg.search_schedule == "exponential":
            prob = 1 - math.exp(-i / (span / 3))
            if float(torch.rand(1, generator=g, dtype=torch.float64)) < prob:
                kids_per = int(cfg.search_width * cfg.children * (w0 / width if w0 > width else 1))
        eps = torch.randn(len(pops) * width * kids_per, 2, generator=g) if cfg.eta > 0 else None
        scored = kids_per > 1 or widths[i] < width or cfg.replace_rate > 0
        members = []
        for b in range(len(pops)):
            row = []
            for m in range(width):
                best = None
                for c in range(kids_per):
                    e = None if eps is None else eps[(b * width + m) * kids_per + c]
                    kid = _step(pops[b][m], x0s[b][m], s[i], s[i + 1], e, noise_form, cfg.eta)
                    kx0 = _denoise(model, kid, s[i + 1])
                    nfe += 1
                    r = float(REWARD(kx0[None])) if scored else 0.0
                    if best is None or r > best[0]:
                        best = (r, kid, kx0)
                row.append(best)
            if widths[i] < width:
                row = [row[j] for j in sorted(range(width), key=lambda j: -row[j][0])[:widths[i]]]
            members.append(row)
        if cfg.replace_rate > 0:
            n_rep = max(1, int(cfg.replace_rate * n))
            for b, row in enumerate(members):
                worst = set(sorted(range(len(row)), key=lambda j: row[j][0])[:n_rep])
                rest = [row[j] for j in range(len(row)) if j not in worst]
                members[b] = rest
            probs = torch.stack([torch.softmax(cfg.lam * torch.tensor([r[0] for r in row], dtype=torch.float64), 0)
                                 for row in members])
            draws = torch.multinomial(probs, n_rep, replacement=True, generator=g)
            members = [row + [row[int(d)] for d in draws[b]] for b, row in enumerate(members)]
        pops = [[mem[1] for mem in row] for row in members]
        x0s = [[mem[2] for mem in row] for row in members]
        width = len(pops[0])
    eps = torch.randn(len(pops) * width, 2, generator=g) if cfg.eta > 0 else None
    out = []
    for b in range(len(pops)):
        final = [_step(pops[b][m], x0s[b][m], s[-2], s[-1], None if eps is None else eps[b * width + m],
                       noise_form, cfg.eta) for m in range(width)]
        out.append(max(final, key=lambda z: float(REWARD(z[None]))))
    return torch.stack(out), nfe


SMALL = {"sop": {"branches": 3}, "dsearch": {"children": 2, "search_width": 1.5, "oversample": 3.0},
         "dsearch_r": {"children": 2, "search_width": 1.5, "replace_rate": 0.3}, "seed_pruning": {}}


@pytest.mark.parametrize("noise_form", ["eps", "flow"])
@pytest.mark.parametrize("preset", BASELINES)
def test_agrees_with_a_straightforward_implementation(preset, noise_form):
    cfg = get_preset(preset, **SMALL[preset])
    n, steps = 4, 12
    out, res, _ = _run(preset, noise_form, n=n, steps=steps, **SMALL[preset])
    ref, nfe = (reference_sop if preset == "sop" else reference_beam)(noise_form, n, 5, steps, cfg)
    assert torch.allclose(out, ref, atol=1e-5), (out, ref)
    assert res.nfe == nfe and res.nfe_per_item == [nfe // 3] * 3


@pytest.mark.parametrize("preset", BASELINES)
def test_deterministic_and_the_seed_matters(preset):
    runs = [_run(preset, "eps", seed=s, **SMALL[preset])[0] for s in (9, 9, 10)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_seed_pruning_costs_exactly_n_trajectories_and_explores_2n_seeds():
    for n, steps in ((4, 12), (8, 24), (2, 16)):
        _, res, events = _run("seed_pruning", "eps", n=n, steps=steps)
        assert res.nfe == 3 * n * steps
        assert events[0]["n_particles"] == 2 * n and res.particles.shape[1] == n // 2
        prunes = [e for e in events if e["type"] == "step"]
        assert [e["step"] for e in prunes] == [steps // 4 - 1, steps // 2 - 1]
        assert [sum(a >= 0 for a in e["ancestors"][0]) for e in prunes] == [n, n // 2]


def test_sop_nfe_counts_every_re_solve():
    _, res, events = _run("sop", "flow", n=4, steps=20)   # flow time = σ: start 0.8 is level 4
    start, moves = sop_levels(torch.linspace(1.0, 0.0, 21), "flow", get_preset("sop"))
    assert start == 4 and moves[0] == (4, 2, 6) and moves[-1][2] == 20
    assert res.nfe == 3 * (4 * start + sum(4 * 8 * (down - up) for _, up, down in moves))
    assert events[0]["n_particles"] == 32 and res.particles.shape == (3, 32, 2)


def test_sop_levels_match_across_noise_forms_at_equal_snr():
    """Flow time t and eps σ = t/(1−t) have the same signal-to-noise ratio: the same levels are chosen."""
    t = torch.linspace(0.95, 0.0, 25)
    config = get_preset("sop")
    assert sop_levels(t, "flow", config) == sop_levels(t / (1 - t), "eps", config)


def test_dsearch_width_shrinks_from_oversample_n_to_n():
    w0, widths = beam_widths(get_preset("dsearch"), 4, 24)
    assert w0 == 20 and widths[0] == 20 and widths[-1] == 4 and widths == sorted(widths, reverse=True)
    for kind in ("linear", "quadratic", "sigmoid"):
        w0, widths = beam_widths(get_preset("dsearch", drop_schedule=kind), 4, 24)
        assert widths[0] >= 19 and min(widths) >= 4 and widths[-1] <= 5, (kind, widths)  # sigmoid: 20 / (1 + e^-5)


@pytest.mark.parametrize("preset", BASELINES)
def test_trace_is_drawable(preset):
    """Step events at increasing steps < n_steps, matrices one entry per slot, ancestors a slot or −1 (empty)."""
    _, res, events = _run(preset, "eps", **SMALL[preset])
    slots, n_steps = events[0]["n_particles"], events[0]["n_steps"]
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == sorted({e["step"] for e in steps}) and steps[-1]["step"] < n_steps
    for e in steps:
        assert e["scores"] is None or all(len(row) == slots for row in e["scores"])
        if e["resampled"]:
            assert all(len(row) == slots and all(-1 <= a < slots for a in row) for row in e["ancestors"])
    final = events[-1]
    assert final["type"] == "final" and all(len(row) == slots for row in final["rewards"])
    assert all(sorted(row) == list(range(slots)) for row in final["order"])
    assert final["nfe"] == res.nfe and res.rewards.shape == res.order.shape


def test_select_verifier_picks_and_local_search_is_refused():
    model, x, sigmas = _setup("eps")
    other = LinearReward([1.0, 0.0])
    for preset in BASELINES:
        res = Trace()
        out = sample_bfs(model, x, sigmas, score_fn=REWARD, select_fn=other, generator=torch.Generator().manual_seed(0),
                         n_particles=2, config=get_preset(preset, **SMALL[preset]), trace=res)
        assert torch.allclose(other(out), res.rewards[torch.arange(3), res.selected])
    from search_core import LangevinConfig
    with pytest.raises(ValueError, match="local search cannot be attached"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator(), config=get_preset("sop"),
                   local=LangevinConfig())


def test_bad_settings_name_the_fix():
    with pytest.raises(ValueError, match="Δf < Δb"):
        get_preset("sop", forward=0.3, backward=0.2)
    with pytest.raises(ValueError, match="do not combine"):
        get_preset("dsearch", replace_rate=0.1)
    with pytest.raises(ValueError, match="never diverge"):
        get_preset("seed_pruning", children=3)


@pytest.mark.parametrize("preset", BASELINES)
def test_callback_every_step_with_one_preview_per_item(preset):
    """ComfyUI's previews, progress bar and interrupt check hang on the callback: every denoising step calls it."""
    model, x, sigmas = _setup("eps", steps=8)
    calls = []
    sample_bfs(model, x, sigmas, None, calls.append, score_fn=REWARD, generator=torch.Generator().manual_seed(0),
               n_particles=2, config=get_preset(preset, **SMALL[preset]))
    assert {c["i"] for c in calls} == set(range(8)) and all(c["denoised"].shape == x.shape for c in calls)


def test_a_further_population_starts_from_new_seeds():
    """The nodes extend a kept search by running the added particles as a further population (search_core/extend.py):
    with per-particle streams, the added population's starts (oversampled ones included) repeat none of the first's."""
    from search_core.extend import is_exact_bfs, merge_populations, result_tensors
    from search_core.streams import ParticleStreams

    model, x, sigmas = _setup("eps", steps=8)
    starts = []

    def first_call(z, sigma, **_):
        if float(sigma[0]) == float(sigmas[0]):
            starts.append(z.clone())
        return model(z, sigma)

    results = []
    for first in (0, 2):
        res = Trace()
        sample_bfs(first_call, x, sigmas, score_fn=REWARD, generator=ParticleStreams(4, 3, 2, first), n_particles=2,
                   config=get_preset("seed_pruning"), trace=res)
        results.append(res)
    a, b = (s.reshape(3, 4, 2) for s in starts)
    assert not any(torch.equal(a[i, j], b[i, k]) for i in range(3) for j in range(4) for k in range(4))
    assert not is_exact_bfs(get_preset("seed_pruning"))
    merged = merge_populations(result_tensors(results[0]), results[1], exact=False)
    assert merged.particles.shape[1] == 2 and merged.nfe_per_item == [32] * 3
