"""Per-item extra_args (an inpainting mask, class labels) reach every model call as the rows of its particles' items."""

import pytest
import torch

from search_core import DFSConfig, LangevinConfig, get_preset, sample_bfs, sample_dfs

STEPS = 6


class LabelledDenoiser:
    """x0 = the row's own label times ones: wrong rows would give another item's value or a shape error."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, label=None, seed=None):
        assert label.shape[0] == x.shape[0], "extra_args rows must match the particle rows"
        self.calls.append(label.clone())
        return label.reshape(-1, 1).to(x) * torch.ones_like(x) + 0 * x


def _setup(n_items=3):
    labels = torch.arange(1.0, n_items + 1) * 10        # item b's x0 is 10·(b+1)
    x = torch.randn(n_items, 2, generator=torch.Generator().manual_seed(0)) * 5
    return x, torch.linspace(5.0, 0.0, STEPS + 1), {"label": labels, "seed": 7}


@pytest.mark.parametrize("local", [None, LangevinConfig(mu=0.0, steps=1, recur_steps=1)])
def test_bfs_rows_get_their_items_values(local):
    x, sigmas, extra = _setup()
    model = LabelledDenoiser()
    out = sample_bfs(model, x, sigmas, extra, score_fn=lambda z: -z.square().sum(1), generator=torch.Generator(),
                     n_particles=4, config=get_preset("bfs"), local=local, guide_fn=lambda z: -z.square().sum(1))
    expected_rows = extra["label"].repeat_interleave(4)
    assert all(torch.equal(call, expected_rows) for call in model.calls)
    assert torch.allclose(out, extra["label"][:, None].expand_as(out))
    assert extra["label"].shape == (3,)  # the caller's dict is left as it was


def test_dfs_active_subset_gets_its_items_values():
    x, sigmas, extra = _setup()
    model = LabelledDenoiser()
    # the first item's x0 (10, 10) scores 10 < δ = 15: only it backtracks, so later calls see a subset of the items
    out = sample_dfs(model, x, sigmas, extra, score_fn=lambda z: z[:, 0], generator=torch.Generator(),
                     config=DFSConfig(delta=15.0, backtrack_steps=2, nfe_budget=3 * STEPS))
    subsets = [call for call in model.calls if call.shape[0] < 3]
    assert subsets and all(torch.equal(call, extra["label"][:1]) for call in subsets)
    assert torch.allclose(out, extra["label"][:, None].expand_as(out))


def test_other_extra_args_pass_unchanged():
    x, sigmas, _ = _setup()
    seen = []

    def model(x, sigma, scale=None, table=None):
        seen.append((scale, table.shape))
        return x * 0

    table = torch.ones(5, 2)  # first dimension is not the number of items: not per item
    sample_bfs(model, x, sigmas, {"scale": 2.5, "table": table}, score_fn=lambda z: z.sum(1),
               generator=torch.Generator(), n_particles=2, config=get_preset("best_of_n"))
    assert all(s == 2.5 and shape == (5, 2) for s, shape in seen)
