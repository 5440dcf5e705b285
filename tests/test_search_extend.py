"""Extending a finished search (search_core/extend.py): Best-of-N and DFS exactly equal one larger run; BFS merges."""
import math

import pytest
import torch

from search_core import DFSConfig, Trace, sample_bfs, sample_dfs
from search_core.extend import is_exact_bfs, merge_populations, result_tensors
from search_core.presets import get_preset
from search_core.streams import ParticleStreams, stream_seed
from search_core.testbed import BumpsReward, LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])
RARE = BumpsReward([[0.0, 3.0]], [0.6], [1.0])  # high only at the rare mode: DFS backtracks a lot
SEED = 11


def _setup(n_items=3, steps=8):
    sigmas = torch.linspace(6.0, 0.0, steps + 1)
    x = torch.randn(n_items, 2, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    return GMM.denoiser("eps"), x, sigmas


def _bfs(n, first=0, preset="best_of_n", n_items=3):
    model, x, sigmas = _setup(n_items)
    res = Trace()
    sample_bfs(model, x, sigmas, score_fn=REWARD, generator=ParticleStreams(SEED, n_items, n, first), n_particles=n,
               config=get_preset(preset), trace=res)
    return res


def test_streams_do_not_depend_on_how_many_there_are():
    few, many = ParticleStreams(3, 2, 2), ParticleStreams(3, 2, 5)
    assert torch.equal(few.rows([2]).randn_like(torch.zeros(1, 4)), many.rows([5]).randn_like(torch.zeros(1, 4)))
    assert stream_seed(3, 0, 1) != stream_seed(3, 1, 0) != stream_seed(4, 0, 1)
    later = ParticleStreams(3, 2, 3, first=2)   # particles 2..4: row 3 is item 1, particle 2
    assert torch.equal(later.rows([3]).randn_like(torch.zeros(1, 4)), many.rows([7]).randn_like(torch.zeros(1, 4)))


def test_streams_draw_the_resampling_from_their_population_generator():
    """generator=ParticleStreams: particle noise from the streams, resampling from ``population`` (default: seeded
    from the seed), so the same streams give the same search and another population generator another one."""
    model, x, sigmas = _setup()

    def run(population=None):
        return sample_bfs(model, x, sigmas, score_fn=REWARD, n_particles=4, config=get_preset("bfs"),
                          generator=ParticleStreams(SEED, 3, 4, population=population))
    same = run()
    assert torch.equal(same, run()) and torch.equal(run(torch.Generator().manual_seed(5)),
                                                    run(torch.Generator().manual_seed(5)))
    assert not torch.equal(run(torch.Generator().manual_seed(5)), run(torch.Generator().manual_seed(6)))
    with pytest.raises(ValueError, match="population must be a torch.Generator"):
        ParticleStreams(SEED, 3, 4, population=5)


def test_one_keyword_each_for_randomness_and_the_trace_with_clear_errors():
    model, x, sigmas = _setup()
    with pytest.raises(ValueError, match=r"generator must be a torch.Generator .* or a ParticleStreams"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=0)
    with pytest.raises(ValueError, match=r"trace must be a search_core Trace \(trace=Trace\(\)"):
        sample_bfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator(), trace=[])
    with pytest.raises(ValueError, match=r"ParticleStreams\(seed, 3, 4\)"):   # streams sized for another N
        sample_bfs(model, x, sigmas, score_fn=REWARD, n_particles=4, generator=ParticleStreams(SEED, 3, 2))
    with pytest.raises(ValueError, match=r"ParticleStreams\(seed, 3\)"):
        sample_dfs(model, x, sigmas, score_fn=REWARD, generator=ParticleStreams(SEED, 3, 2))
    seen = []
    trace = Trace(on_event=seen.append)
    trace.events.append({"type": "stale"})   # a reused trace starts over
    sample_dfs(model, x, sigmas, score_fn=REWARD, generator=torch.Generator(), trace=trace)
    assert seen == trace.events and trace.algorithm == "dfs" and trace.events[0]["type"] == "start"


@pytest.mark.parametrize("n,k", [(1, 1), (3, 2), (2, 6)])
def test_best_of_n_extended_by_k_is_one_run_of_n_plus_k(n, k):
    assert is_exact_bfs(get_preset("best_of_n")) and not is_exact_bfs(get_preset("fk"))
    once = _bfs(n + k)
    first = _bfs(n)
    added = _bfs(k, first=n)
    assert added.nfe == 3 * k * 8   # only the k new particles were computed
    merged = merge_populations(result_tensors(first), added, exact=True)
    assert torch.equal(merged.particles, once.particles) and torch.equal(merged.rewards, once.rewards)
    assert torch.equal(merged.selected, once.selected) and torch.equal(merged.samples, once.samples)
    assert torch.equal(merged.order, once.order) and merged.nfe_per_item == once.nfe_per_item


@pytest.mark.parametrize("preset", ["bfs", "fk", "treeg"])
def test_bfs_further_population_is_never_worse(preset):
    first = _bfs(3, preset=preset)
    before = first.rewards[torch.arange(3), first.selected].clone()
    merged = merge_populations(result_tensors(first), _bfs(4, first=3, preset=preset), exact=False)
    after = merged.rewards[torch.arange(3), merged.selected]
    assert (after >= before).all() and merged.particles.shape[1] == 7
    assert torch.equal(merged.samples, merged.particles[torch.arange(3), merged.selected])


def _dfs(budget, resume=None, n_items=6, delta=0.5):
    model, x, sigmas = _setup(n_items, steps=10)
    events = []
    res = Trace(on_event=events.append)
    out = sample_dfs(model, x, sigmas, score_fn=RARE, generator=ParticleStreams(SEED, n_items),
                     config=DFSConfig(delta=delta, backtrack_steps=4, nfe_budget=budget), trace=res, resume=resume)
    return out, res, events


def _best_of(runs):
    """Per item, the first run's sample among the best rewards (later budgets first: ties go to the larger run)."""
    rewards = torch.stack([r.rewards[:, 0] for r in runs])          # [runs, items]
    pick = rewards.flip(0).argmax(0)
    pick = len(runs) - 1 - pick
    items = torch.arange(rewards.shape[1])
    return torch.stack([r.samples for r in runs])[pick, items], rewards[pick, items]


@pytest.mark.parametrize("budgets", [(20, 45), (10, 31), (17, 30, 52)])
def test_dfs_resumed_is_one_run_of_the_larger_budget_or_the_better_earlier_sample(budgets):
    alone = [_dfs(budget)[1] for budget in budgets]
    once = alone[-1]
    state, spent = None, 0
    for budget in budgets:
        part, res, events = _dfs(budget, resume=state)
        state, spent = res.state, spent + res.nfe
    # exact: each item continues as the larger run would; DFS is not monotone in its budget (a smaller budget may
    # finish a dive a larger one backtracks from), so an earlier run's better sample is kept
    samples, rewards = _best_of(alone)
    assert torch.equal(part, samples) and torch.equal(res.rewards[:, 0], rewards)
    assert res.nfe_per_item == once.nfe_per_item and res.backtracks == once.backtracks
    same = once.rewards[:, 0] >= rewards
    assert torch.equal(part[same], once.samples[same])   # where the larger run is not worse: exactly its sample
    assert spent < once.nfe + alone[0].nfe                # the first run's work is reused (at most its tail redone)


def test_dfs_resume_runs_only_the_items_that_ran_out_and_is_never_worse():
    _, small, _ = _dfs(20, delta=0.05)
    opened = small.state["open"]
    _, more, events = _dfs(40, resume=small.state, delta=0.05)
    moved = {e["item"] for e in events if e["type"] == "step"}
    assert moved == set(opened.nonzero()[:, 0].tolist()) and moved
    assert (more.rewards >= small.rewards).all()


def test_dfs_resume_refuses_a_smaller_budget():
    _, small, _ = _dfs(30)
    with pytest.raises(ValueError, match="only adds budget"):
        _dfs(20, resume=small.state)
    assert math.isfinite(float(small.rewards.max()))
