"""The bridge (bridge/) without ComfyUI: the pack imported under a bare package name, a tiny plain-torch denoiser
with the few BaseModel parts the bridge reads, and a Host of plain functions."""
import importlib
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BARE = "diffusion_search_bare"   # not ComfyUI's name for the pack: its modules never mix with a booted ComfyUI's


def pack_module(name: str):
    """``<pack>.<name>`` (e.g. "bridge.call") of the checkout, imported without its nodes and without ComfyUI."""
    if BARE not in sys.modules:
        package = types.ModuleType(BARE)
        package.__path__ = [str(REPO)]
        sys.modules[BARE] = package
    return importlib.import_module(f"{BARE}.{name}")


class Identity:
    def inverse_noise_scaling(self, sigma, latent):
        return latent


class TinyBase(torch.nn.Module):
    """What the bridge reads of ComfyUI's BaseModel: model_sampling, process_latent_out, memory_required."""

    def __init__(self, channels: int = 4, seed: int = 0):
        super().__init__()
        self.mix = torch.nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            self.mix.weight.copy_(torch.eye(channels)[:, :, None, None] +
                                  0.1 * torch.randn(self.mix.weight.shape, generator=generator))
            self.mix.bias.zero_()
        self.model_sampling = Identity()

    def process_latent_out(self, latent):
        return latent

    def memory_required(self, shape):
        return 1e6 + 1e3 * shape[0]


class TinyDenoiser(torch.nn.Module):
    """The sampler's model (x, sigma) -> x0 around TinyBase, as KSAMPLER hands it (base under .inner_model)."""

    def __init__(self, base: TinyBase):
        super().__init__()
        self.inner_model = base

    def forward(self, x, sigma, **extra_args):
        scale = (1 + sigma.view(-1, 1, 1, 1) ** 2) ** -0.5
        return torch.tanh(self.inner_model.mix(x * scale))


class TinyVAE:
    """A decoder in the shape of ComfyUI's VAE as the plan validates it: first_stage_model (latent -> RGB)."""

    def __init__(self, channels: int = 4):
        self.first_stage_model = torch.nn.Conv2d(channels, 3, 1)
        with torch.no_grad():
            self.first_stage_model.weight.copy_(torch.linspace(-1, 1, 3 * channels).reshape(3, channels, 1, 1))
            self.first_stage_model.bias.zero_()


class PlainScorer:
    """Decode with the tiny VAE, score with a real verifier: what LatentScorer does inside ComfyUI."""

    def __init__(self, vae: TinyVAE, verifier, prompt: str):
        self.vae, self.verifier, self.prompt = vae, verifier, prompt
        self.evaluations, self.seconds = 0, 0.0

    def images(self, x0):
        return torch.sigmoid(self.vae.first_stage_model(x0.float())).movedim(1, -1)

    def score(self, x0):
        started = time.perf_counter()
        with torch.no_grad():
            rewards = self.verifier.score(self.images(x0), self.prompt)
        self.evaluations += x0.shape[0]
        self.seconds += time.perf_counter() - started
        return rewards

    def score_with_grad(self, x0):
        self.evaluations += x0.shape[0]
        return self.verifier.score(self.images(x0), self.prompt, grad=True)


def plain_host(events: list, state_folder=None):
    """A Host of plain functions: an eps model, no ModelPatcher, 1 GiB free, events into ``events``."""
    call = pack_module("bridge.call")

    def scorers(spec, base_model, device, rows_policy, patcher):
        select = None if spec.select_verifier is None else PlainScorer(spec.vae, spec.select_verifier, spec.prompt)
        return PlainScorer(spec.vae, spec.guide_verifier, spec.prompt), select

    return call.Host(noise_form=lambda base: "eps", unet_patcher=lambda base: None,
                     free_memory=lambda base, device: float(2 ** 30), scorers=scorers,
                     differentiable=lambda denoiser, base: denoiser, check_interrupted=lambda: None,
                     prompt_id=lambda: "prompt-1", send_event=events.append, send_text=lambda text, node: None,
                     state_folder=None if state_folder is None else (lambda: str(state_folder)))
