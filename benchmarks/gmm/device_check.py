"""Device check of search_core on CUDA: samplers with CUDA tensors and CPU or CUDA generators, plus the overhead
ratio on the GPU.  python -m benchmarks.gmm.device_check   (needs a CUDA GPU; prints one JSON document)."""
from __future__ import annotations

import json

import torch

from search_core import (DFSConfig, LangevinConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local,
                         PRESETS)
from search_core.testbed import LinearReward, standard_mixture

from .scenarios import sigma_schedule
from .speed import speed_check


def contract_on(device: str, gen_device: str, noise_form: str) -> dict:
    gmm = standard_mixture()
    gmm.means, gmm.variances, gmm.weights = (t.to(device) for t in (gmm.means, gmm.variances, gmm.weights))
    reward = LinearReward([0.0, 1.0])
    reward.direction = reward.direction.to(device)
    sigmas = sigma_schedule(12) if noise_form == "eps" else torch.linspace(1.0, 0.0, 13)
    x = (torch.randn(5, 2, generator=torch.Generator().manual_seed(0)) * sigmas[0]).to(device)
    model = gmm.denoiser(noise_form)
    out = {}
    for name in PRESETS:
        runs = []
        for _ in range(2):
            res = Trace()
            y = sample_bfs(model, x, sigmas, score_fn=reward, n_particles=8, config=get_preset(name),
                           noise_form=noise_form,
                           generator=torch.Generator(device=gen_device).manual_seed(3), trace=res, max_batch=16)
            runs.append(y)
        json.loads(res.to_json())
        out[name] = bool(runs[0].device.type == torch.device(device).type and torch.equal(runs[0], runs[1])
                         and torch.isfinite(runs[0]).all() and res.nfe == 5 * 8 * 12)
    res = Trace()
    y = sample_dfs(model, x, sigmas, score_fn=reward, noise_form=noise_form, config=DFSConfig(delta=1.0, nfe_budget=30),
                   generator=torch.Generator(device=gen_device).manual_seed(3), trace=res)
    out["dfs"] = bool(torch.isfinite(y).all() and max(res.nfe_per_item) <= 30)
    for mode in ("x0", "denoiser"):
        res = Trace()
        y = sample_local(model, x, sigmas, guide_fn=reward, n_particles=2, noise_form=noise_form,
                         config=LangevinConfig(grad_mode=mode, recur_steps=1),
                         generator=torch.Generator(device=gen_device).manual_seed(3), trace=res)
        out[f"local_{mode}"] = bool(torch.isfinite(y).all() and res.grad_evals > 0)
    return out


if __name__ == "__main__":
    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for gen_device in ("cpu", "cuda"):
        for form in ("eps", "flow"):
            report[f"contract gen={gen_device} {form}"] = contract_on("cuda", gen_device, form)
    for dim in (16384, 65536):
        report[f"speed d={dim}"] = speed_check(repeats=5, dim=dim, device="cuda")
    print(json.dumps(report, indent=1))
