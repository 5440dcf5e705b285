"""The numbers world's learned TAESD decoder: 8x super-resolution of the latent's grey digit, not an exact upsampling.

The latent space is the digits world's (every channel carries the 8 x 8k grey canvas, vae_scale 3/64), so the same
UNet serves both worlds; the encoder is the digits world's exact one (8 x 8 block means of the luma). The decoder is
ComfyUI's TAESD decoder layout, started from the digits world's constructed nearest-upsampling decoder (plus a little
noise, so its residual blocks can learn) and trained to give bicubic-smooth strokes. Trained only on data latents, it
is a real network off that manifold: a search that pushes latents there can find pixels a classifier likes that no
digit has (reward hacking), which the exact decoder could not produce.
"""
from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F
from torch import nn

from worlds.digits import vae

log = logging.getLogger(__name__)


def _conv(c_in, c_out, bias=True):
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)


class _Block(nn.Module):
    def __init__(self, c=vae.WIDTH):
        super().__init__()
        self.conv = nn.Sequential(_conv(c, c), nn.ReLU(), _conv(c, c), nn.ReLU(), _conv(c, c))

    def forward(self, x):
        return F.relu(self.conv(x) + x)


class _Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


def taesd_decoder() -> nn.Sequential:
    """comfy/taesd/taesd.py's Decoder, with the same nn.Sequential indices (so the state-dict keys match)."""
    c = vae.WIDTH
    layers = [_Clamp(), _conv(vae.LATENT_CHANNELS, c), nn.ReLU()]
    for _ in range(3):
        layers += [_Block(), _Block(), _Block(), nn.Upsample(scale_factor=2), _conv(c, c, bias=False)]
    return nn.Sequential(*layers, _Block(), _conv(c, 3))


def decoder_weights(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The decoder's tensors of a TAESD state dict (keys `taesd_decoder.*`), prefix dropped, float32."""
    prefix = "taesd_decoder."
    return {k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix)}


def load_decoder(vae_file) -> nn.Sequential:
    """This world's decoder from its VAE file (float8 on disk), in eval mode."""
    from safetensors.torch import load_file

    decoder = taesd_decoder()
    decoder.load_state_dict(decoder_weights(load_file(str(vae_file))))
    return decoder.eval()


def target_images(grey: torch.Tensor) -> torch.Tensor:
    """(B, 8, W) grey -> (B, 3, 64, 8W): bicubic 8x, clamped: what the decoder learns to draw."""
    up = F.interpolate(grey[:, None], scale_factor=vae.UPSCALE, mode="bicubic", align_corners=False)
    return up.clamp(0, 1).expand(-1, 3, -1, -1)


def decode(decoder: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """VAE latents -> images in [0, 1], as ComfyUI's TAESD decodes them (decoder(z * vae_scale), clamped)."""
    return decoder(z * vae.SCALE).clamp(0, 1)


def train_decoder(grey: torch.Tensor, steps: int = 150, batch: int = 4, lr: float = 1e-3, seed: int = 0,
                  latent_noise: float = 0.03, digits: int = 1) -> tuple[nn.Sequential, list]:
    """Fit the decoder to bicubic targets of (N, 8, 8) digits on `digits`-wide canvases (it is convolutional: one
    digit teaches every width, at a third of the cost); returns it, in eval mode, and its loss curve."""
    from worlds.numbers.data import compose_numbers

    decoder = taesd_decoder()
    decoder.load_state_dict(decoder_weights(vae.taesd_state_dict()))
    g = torch.Generator().manual_seed(seed + 30)
    with torch.no_grad():                 # zero residual convs pass no gradient: wake them with a little noise
        for name, p in decoder.named_parameters():
            if ".conv." in name and name.endswith("weight"):
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    labels = torch.zeros(len(grey), dtype=torch.int64)
    losses, t0 = [], time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / steps)).item())
        canvas, _ = compose_numbers(grey, labels, digits, batch, g)
        # a little grey-level noise: what sampled latents look like near the data, not far off it
        noisy = (canvas + latent_noise * torch.randn(canvas.shape, generator=g)).clamp(0, 1)
        loss = F.mse_loss(decode(decoder, vae.grey_to_latent(noisy)), target_images(noisy))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps:
            losses.append((step, round(loss.item(), 5)))
            log.info("decoder step %d/%d loss %.5f (%.2f s/step)", step, steps, loss.item(), (time.time() - t0) / step)
    return decoder.eval(), losses


def taesd_file(decoder: nn.Module) -> dict[str, torch.Tensor]:
    """The VAE file's tensors: the digits world's exact encoder (float8, lossless) + this decoder (float8 e4m3: 1.2 MB
    instead of 2.5, for the weights budget; held-out MSE to the bicubic target 0.00023 instead of 0.00005)."""
    sd = {k: v.to(torch.float8_e4m3fn) for k, v in vae.taesd_state_dict().items() if k.startswith("taesd_encoder.")}
    sd.update({"taesd_decoder." + k: v.detach().to(torch.float8_e4m3fn) for k, v in decoder.state_dict().items()})
    sd["vae_scale"] = torch.tensor(vae.SCALE)
    return sd


def main(argv=None) -> int:
    """python -m worlds.numbers.decoder OUT.safetensors [--steps N]: train the decoder and write the VAE file."""
    import argparse
    from pathlib import Path

    from safetensors.torch import save_file

    from worlds.digits.data import load_digits_split

    parser = argparse.ArgumentParser(prog="python -m worlds.numbers.decoder", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    split = load_digits_split(0)
    decoder, losses = train_decoder(split.grey[split.train], steps=args.steps)
    save_file({k: v.contiguous() for k, v in taesd_file(decoder).items()}, str(args.out),
              metadata={"format": "taesd", "losses": str(losses)})
    decoder.load_state_dict(decoder_weights(taesd_file(decoder)))   # measure what the file holds
    held = vae.grey_to_latent(split.grey[split.held_out])
    with torch.no_grad():
        err = F.mse_loss(decode(decoder, held), target_images(split.grey[split.held_out])).item()
        exact = F.mse_loss(decode(decoder, held), vae.decode(held)).item()
    log.info("held-out MSE to the bicubic target %.5f, to the exact nearest upsampling %.5f", err, exact)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
