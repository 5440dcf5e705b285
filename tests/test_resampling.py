"""Statistical tests of the resampling schemes (pure functions on log-weights)."""
import math

import pytest
import torch

from search_core import resampling as R

UNBIASED = ["multinomial", "stratified", "systematic", "residual", "ssp"]
ALL = list(R.SCHEMES)


def _weights(n, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, generator=g) ** 3
    w[1] = 0.0  # a zero-weight particle
    return w / w.sum()


@pytest.mark.parametrize("scheme", UNBIASED)
def test_counts_are_unbiased(scheme):
    n, reps = 7, 20000
    w = _weights(n, 1)
    log_w = torch.log(w).expand(reps, n)
    counts = R.counts_from_ancestors(R.resample(scheme, log_w, torch.Generator().manual_seed(2)), n).double()
    mean, se = counts.mean(0), counts.std(0) / math.sqrt(reps)
    z = (mean - n * w.double()).abs() / se.clamp_min(1e-3)
    assert (z < 5).all(), (scheme, mean, n * w)
    assert (counts.sum(1) == n).all()


@pytest.mark.parametrize("scheme", ["ssp", "systematic"])
def test_counts_within_floor_and_ceil(scheme):
    n, reps = 16, 3000
    g = torch.Generator().manual_seed(3)
    log_w = torch.randn(reps, n, generator=g) * 2
    w = torch.softmax(log_w.double(), 1)
    counts = R.counts_from_ancestors(R.resample(scheme, log_w, g), n).double()
    assert (counts >= torch.floor(n * w - 1e-9)).all() and (counts <= torch.ceil(n * w + 1e-9)).all()


@pytest.mark.parametrize("scheme", [s for s in ALL if s != "none"])  # "none" keeps everyone by definition
def test_zero_weight_never_chosen(scheme):
    n, reps = 6, 4000
    log_w = torch.log(_weights(n, 4)).expand(reps, n).clone()
    log_w[:, -1] = -math.inf  # zero weight at the end (the inverse-CDF edge) too
    anc = R.resample(scheme, log_w, torch.Generator().manual_seed(5))
    assert not (anc == 1).any() and not (anc == n - 1).any()
    assert anc.shape == (reps, n) and anc.dtype == torch.long


@pytest.mark.parametrize("scheme", [s for s in ALL if s != "none"])
def test_float32_extremes(scheme):
    log_w = torch.tensor([[1e4, 0.0, -1e4, 1e4 - 1e-3], [-3e38, -3e38, -3e38, -3e38],
                          [1e-7, 0.0, 2e-7, -1e-7]], dtype=torch.float32)
    anc = R.resample(scheme, log_w, torch.Generator().manual_seed(6))
    assert anc.min() >= 0 and anc.max() < 4
    assert set(anc[0].tolist()) <= {0, 3}  # the others have weight exp(-1e4) = 0 in any precision
    ess = R.ess(log_w)
    assert torch.isfinite(ess).all() and (ess >= 1 - 1e-6).all() and (ess <= 4 + 1e-6).all()


def test_bad_log_weights_raise():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="zero weight"):
        R.resample("multinomial", torch.full((1, 3), -math.inf), g)
    with pytest.raises(ValueError, match="NaN"):
        R.resample("ssp", torch.tensor([[0.0, float("nan")]]), g)
    with pytest.raises(ValueError, match="unknown resampling"):
        R.resample("bogus", torch.zeros(1, 3), g)


def test_top_half_and_greedy():
    log_w = torch.tensor([[0.1, 3.0, -1.0, 2.0]])
    anc = R.resample("top_half", log_w, None)
    assert sorted(anc[0].tolist()) == [1, 1, 3, 3]
    assert R.resample("greedy", log_w, None)[0].tolist() == [1, 1, 1, 1]
    assert R.resample("none", log_w, None)[0].tolist() == [0, 1, 2, 3]


def test_ess_and_counts_helpers():
    assert torch.allclose(R.ess(torch.zeros(2, 5)), torch.full((2,), 5.0, dtype=torch.float64))
    assert torch.allclose(R.ess(torch.tensor([[0.0, -math.inf, -math.inf]])), torch.ones(1, dtype=torch.float64))
    counts = torch.tensor([[2, 0, 1], [0, 3, 0]])
    anc = R.ancestors_from_counts(counts)
    assert anc.tolist() == [[0, 0, 2], [1, 1, 1]]
    assert torch.equal(R.counts_from_ancestors(anc), counts)


def test_top_half_ranks_in_log_space():
    """TreeG keeps the best half by score; weights that underflow after a softmax must not shrink the survivors."""
    log_w = torch.tensor([[0.0, -1000.0, -2000.0, -3000.0], [-5e4, 3e4, -math.inf, 2e4]], dtype=torch.float64)
    anc = R.resample("top_half", log_w, None)
    assert sorted(anc[0].tolist()) == [0, 0, 1, 1] and sorted(anc[1].tolist()) == [1, 1, 3, 3]
    # scale-free: the survivors do not depend on λ
    scores = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    for lam in (1e-3, 1.0, 1e3, 1e6):
        assert torch.equal(R.resample("top_half", lam * scores, None), R.resample("top_half", scores, None))


@pytest.mark.parametrize("n", [3, 7, 49, 98, 1000])
def test_residual_keeps_equal_weights_deterministic(n):
    """floor(N·w) with a tolerance: N equal weights give one child each, for every seed (not a multinomial draw)."""
    log_w = torch.zeros(20, n)
    counts = R.counts_from_ancestors(R.resample("residual", log_w, torch.Generator().manual_seed(n)), n)
    assert (counts == 1).all()


def test_huge_log_weights_in_float64():
    """λ·r beyond float32's range stays finite in float64 and selects the largest."""
    scores = torch.tensor([[1e37, 3e37, 2e37]], dtype=torch.float32)
    from search_core.schedules import log_weights
    lw = log_weights(scores, 10.0)
    assert lw.dtype == torch.float64 and torch.isfinite(lw).all()
    assert R.resample("multinomial", lw, torch.Generator().manual_seed(0))[0].tolist() == [1, 1, 1]
