"""Real pretrained weights: MTCNN ONet from facenet-pytorch; gradient guidance raises the face probability."""
from __future__ import annotations

import os

import pytest
import torch

import verifiers

facenet = pytest.importorskip("facenet_pytorch", reason="pip install --no-deps facenet-pytorch==2.6.0")
DATA = os.path.join(os.path.dirname(facenet.__file__), "data")


def test_onet_matches_facenet_pytorch():
    from facenet_pytorch.models.mtcnn import ONet as PackageONet
    verifier = verifiers.load("face", DATA)
    reference = PackageONet(pretrained=True).eval()
    images = torch.rand(3, 48, 48, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        inputs = (images.permute(0, 3, 1, 2) * 255 - 127.5) * 0.0078125
        expected = reference(inputs)[2][:, 1].log()
    torch.testing.assert_close(verifier.score(images), expected, atol=1e-5, rtol=1e-4)


def test_gradient_guidance_raises_face_probability_on_real_weights():
    with torch.inference_mode():  # as a ComfyUI loader node would build it
        verifier = verifiers.load("face", DATA)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(4, 64, 64, 3, generator=generator).requires_grad_(True)
    before = verifier.score(images).exp()
    optimiser = torch.optim.Adam([images], lr=0.02)
    for _ in range(30):
        optimiser.zero_grad()
        (-verifier.score(images, grad=True).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            images.clamp_(0, 1)
    after = verifier.score(images).exp()
    assert before.max() < 0.5, before
    assert (after > 0.9).all(), after
