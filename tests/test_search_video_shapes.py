"""search_core on video latents [B, C, T, H, W]: every sampler gives exactly what it gives on the flattened rows."""
import pytest
import torch

from search_core import DFSConfig, LangevinConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local

SHAPE = (4, 3, 2, 2)   # C, T, H, W


class GaussianData:
    """Data x0 ~ N(mu, s²) per entry: the exact denoiser E[x0 | x_σ] for both noise forms, for rows of any shape."""

    def __init__(self, shape, noise_form):
        g = torch.Generator().manual_seed(7)
        self.mu = torch.randn(shape, generator=g)
        self.s2 = 0.5
        self.noise_form = noise_form

    def __call__(self, x, sigma, **kwargs):
        s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
        a = torch.ones_like(s) if self.noise_form == "eps" else 1 - s
        mu = self.mu.reshape(x.shape[1:])
        return mu + a * self.s2 * (x - a * mu) / (a * a * self.s2 + s * s)


def _linear_reward(shape):
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(8))
    return lambda x0: (x0 * weight.reshape(x0.shape[1:])).flatten(1).sum(1) / weight.numel()


RUNS = {
    "bfs": (sample_bfs, dict(n_particles=4, config=get_preset("bfs"))),
    "fk": (sample_bfs, dict(n_particles=3, config=get_preset("fk"))),
    "dfs": (sample_dfs, dict(config=DFSConfig(delta=0.2, backtrack_steps=2, nfe_budget=14))),
    "local": (sample_local, dict(n_particles=2, config=LangevinConfig(steps=1, mu=0.05, recur_steps=1))),
}


@pytest.mark.parametrize("noise_form", ["eps", "flow"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_video_latents_run_like_flat_rows(name, noise_form):
    sampler, options = RUNS[name]
    sigmas = torch.linspace(5.0, 0.0, 7) if noise_form == "eps" else torch.linspace(1.0, 0.0, 7)
    reward = _linear_reward(SHAPE)
    key = "guide_fn" if name == "local" else "score_fn"
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(9)) * sigmas[0]
    outputs, results = [], []
    for rows in (x, x.flatten(1)):
        result = Trace()
        out = sampler(GaussianData(SHAPE, noise_form), rows, sigmas, generator=torch.Generator().manual_seed(3),
                      noise_form=noise_form, trace=result, **{key: reward}, **options)
        assert out.shape == rows.shape and torch.isfinite(out).all()
        assert result.particles.shape[2:] == rows.shape[1:]
        outputs.append(out)
        results.append(result)
    assert torch.allclose(outputs[0].flatten(1), outputs[1], atol=1e-5)
    assert results[0].nfe == results[1].nfe
    assert torch.allclose(results[0].rewards, results[1].rewards, atol=1e-5)
    if name == "dfs":
        assert results[0].backtracks == results[1].backtracks


def test_video_rows_chunk_like_images():
    """The rows-per-call policy sees the whole 5-D shape and the chunked run equals the unchunked one."""
    sigmas = torch.linspace(5.0, 0.0, 5)
    x = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    seen = []

    def policy(shape):
        seen.append(tuple(shape))
        return 5

    runs = [sample_bfs(GaussianData(SHAPE, "eps"), x, sigmas, score_fn=_linear_reward(SHAPE), n_particles=4,
                       generator=torch.Generator().manual_seed(2), max_batch=mb) for mb in (None, policy)]
    assert torch.equal(runs[0], runs[1])
    assert seen and all(shape == (12, *SHAPE) for shape in seen)


def test_dfs_backtracks_on_video_latents():
    sigmas = torch.linspace(5.0, 0.0, 7)
    x = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(9)) * sigmas[0]
    result = Trace()
    sample_dfs(GaussianData(SHAPE, "eps"), x, sigmas, score_fn=_linear_reward(SHAPE), trace=result,
               generator=torch.Generator().manual_seed(3), config=DFSConfig(delta=1.0, backtrack_steps=2,
                                                                           nfe_budget=14))
    assert sum(result.backtracks) > 0   # the re-noising path (forward kernel, fresh starts) ran on 5-D rows
