"""Row chunking of the denoiser: a rows-per-call policy (int or callable) caps every call; results do not change."""
import pytest
import torch

from search_core import DFSConfig, LangevinConfig, get_preset, sample_bfs, sample_dfs, sample_local
from search_core.chunking import rows_per_call, run_chunked
from search_core.testbed import LinearReward, standard_mixture

GMM = standard_mixture()
REWARD = LinearReward([0.0, 1.0])


class RecordingDenoiser:
    """The exact GMM denoiser, recording how many rows each call gets."""

    def __init__(self):
        self.inner = GMM.denoiser("eps")
        self.rows = []

    def __call__(self, x, sigma, **kwargs):
        self.rows.append(x.shape[0])
        return self.inner(x, sigma, **kwargs)


def _run(sampler, max_batch, seed=3, n_items=5, **options):
    model = RecordingDenoiser()
    sigmas = torch.linspace(6.0, 0.0, 7)
    x = torch.randn(n_items, 2, generator=torch.Generator().manual_seed(seed)) * sigmas[0]
    out = sampler(model, x, sigmas, generator=torch.Generator().manual_seed(seed), max_batch=max_batch, **options)
    return out, model.rows


SAMPLERS = {
    "bfs": (sample_bfs, dict(score_fn=REWARD, n_particles=16, config=get_preset("bfs"))),
    "dfs": (sample_dfs, dict(score_fn=REWARD, n_items=12,
                            config=DFSConfig(delta=0.5, backtrack_steps=2, nfe_budget=12))),
    "local": (sample_local, dict(guide_fn=REWARD, n_particles=8, config=LangevinConfig(steps=1, mu=0.1,
                                                                                        recur_steps=1))),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_policy_caps_every_call_and_keeps_the_result(name):
    sampler, options = SAMPLERS[name]
    reference, rows_whole = _run(sampler, None, **options)
    asked = []

    def policy(shape):  # a memory policy: it sees the shape of all rows and answers rows per call
        asked.append(tuple(shape))
        return 7

    out, rows = _run(sampler, policy, **options)
    assert asked and all(len(shape) == 2 for shape in asked)
    assert max(rows) <= 7 < max(rows_whole)          # the uncapped run did make bigger calls
    assert sum(rows) == sum(rows_whole)              # same work, only split
    assert torch.equal(out, reference)               # same seed, same samples, bit for bit


def test_rows_per_call_rules():
    shape = torch.Size([40, 4, 8, 8])
    assert rows_per_call(None, shape) == 40
    assert rows_per_call(16, shape) == 16 and rows_per_call(100, shape) == 40
    assert rows_per_call(lambda s: s[0] // 4, shape) == 10
    for bad in (0, -1, 2.5, lambda s: 0):
        with pytest.raises(ValueError, match="max_batch"):
            rows_per_call(bad, shape)


def test_cpu_allocation_failure_halves_the_chunk():
    """A CPU allocator failure (a plain RuntimeError) is treated as out-of-memory like the CUDA one."""
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        if x.shape[0] > 3:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 11498291200 bytes. Error code 12 (Cannot allocate memory)")
        return x * 2

    x = torch.arange(10.0)[:, None]
    assert torch.equal(run_chunked(fn, x, max_batch=8), x * 2)
    assert calls == [8, 4, 2, 2, 2, 2, 2]  # 8 fails, 4 fails, then chunks of 2
    with pytest.raises(ValueError, match="boom"):
        run_chunked(lambda t: (_ for _ in ()).throw(ValueError("boom")), x, max_batch=4)
