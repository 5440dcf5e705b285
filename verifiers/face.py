"""Face verifier: MTCNN's ONet (Zhang et al. 2016) face log-probability on the whole image, resized to 48 px."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Verifier
from .checkpoints import load_exact, read_state_dict
from .registry import resolve_file

ONET_SIZE = 48


class ONet(nn.Module):
    """MTCNN output network; parameter names follow facenet-pytorch's onet.pt."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)   # face / not-face logits
        self.dense6_2 = nn.Linear(256, 4)   # box regression (unused for the reward)
        self.dense6_3 = nn.Linear(256, 10)  # landmarks (unused for the reward)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Face logits [B,2] for [B,3,48,48] inputs scaled like MTCNN ((x*255 - 127.5) / 128)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the trained dense layer expects W,H,C order
        return self.dense6_1(self.prelu5(self.dense5(x)))


class FaceVerifier(Verifier):
    """log p(face) from ONet; prompts are ignored."""

    name = "face"
    differentiable = True

    def __init__(self, net: ONet, *, chunk_size: int = 64, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.net = net
        self.finish_init()

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = F.interpolate(images, size=(ONET_SIZE, ONET_SIZE), mode="area")  # MTCNN's own resampling
        pixels = (pixels * 255.0 - 127.5) * 0.0078125
        return torch.log_softmax(self.net(pixels), dim=1)[:, 1]


def load_face(folder: str | Path | None = None, *, weights: str | Path = "onet.pt", device="cpu",
              dtype=torch.float32, chunk_size: int = 64) -> FaceVerifier:
    """ONet from facenet-pytorch's onet.pt (a plain state dict)."""
    path = resolve_file(folder, weights, "face", "onet.pt")
    net = ONet()
    load_exact(net, read_state_dict(path), path, what="MTCNN ONet", allow_unexpected=False,
               fix="Pick facenet-pytorch's onet.pt (facenet_pytorch/data/onet.pt)")
    return FaceVerifier(net, chunk_size=chunk_size, device=device, dtype=dtype)
