"""The verifier interface: validation, chunking, dtype/device, NaN reporting, weight-free verifiers, composite, registry."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import verifiers
from verifiers import CompositeVerifier, RewardError, Verifier, rank_scores
from verifiers.simple import ColourfulnessVerifier, PromptColourVerifier

REPO = pathlib.Path(__file__).resolve().parents[1]


def random_images(count=4, height=16, width=12, seed=0):
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(seed))


class BrokenVerifier(Verifier):
    """Returns NaN for odd images (a real subclass of the interface, to exercise the NaN check)."""

    name = "broken"

    def score_chunk(self, images, prompts):
        rewards = images.mean(dim=(1, 2, 3))
        return torch.where(torch.arange(len(rewards)) % 2 == 1, torch.full_like(rewards, float("nan")), rewards)


@pytest.mark.parametrize("images, fix", [
    (torch.rand(2, 3, 8, 8), "permute"),
    (torch.rand(8, 8, 3), r"\[B,H,W,3\]"),
    ((torch.rand(1, 8, 8, 3) * 255).to(torch.uint8), "divide"),
    (torch.rand(1, 8, 8, 3) * 2 - 1, r"\(x \+ 1\) / 2"),
    (torch.full((1, 8, 8, 3), float("nan")), "NaN"),
])
def test_bad_images_get_errors_that_name_the_fix(images, fix):
    with pytest.raises(ValueError, match=fix):
        ColourfulnessVerifier().score(images)


def test_prompt_count_must_match():
    with pytest.raises(ValueError, match="one per image"):
        ColourfulnessVerifier().score(random_images(3), ["a", "b"])


def test_nan_rewards_raise_reward_error_naming_the_images():
    with pytest.raises(RewardError, match=r"\[1, 3\]"):
        BrokenVerifier(chunk_size=4).score(random_images(5))


def test_colourfulness_matches_hasler_suesstrunk_formula_in_numpy():
    images = random_images(3, seed=1)
    images[0] = 0.5  # grey: no colourfulness
    got = ColourfulnessVerifier().score(images)
    pixels = images.double().numpy() * 255
    rg = pixels[..., 0] - pixels[..., 1]
    yb = 0.5 * (pixels[..., 0] + pixels[..., 1]) - pixels[..., 2]
    flat = lambda a: a.reshape(len(a), -1)
    expected = (np.sqrt(flat(rg).std(1) ** 2 + flat(yb).std(1) ** 2)
                + 0.3 * np.sqrt(flat(rg).mean(1) ** 2 + flat(yb).mean(1) ** 2))
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-3)
    assert got[0] < 0.01 < got[1]


def test_chunking_dtype_and_grad_under_inference_mode():
    images = random_images(7, seed=2)
    small = ColourfulnessVerifier(chunk_size=2).score(images)
    big = ColourfulnessVerifier(chunk_size=64, dtype=torch.float64).score(images)
    assert small.dtype == big.dtype == torch.float32 and small.shape == (7,)
    torch.testing.assert_close(small, big, rtol=1e-5, atol=1e-4)
    moved = PromptColourVerifier().to(torch.float64)
    assert moved.dtype == torch.float64 and moved.score(images, "red").dtype == torch.float32
    with torch.inference_mode():
        verifier = PromptColourVerifier()
        frozen = images.clone()
    with pytest.raises(ValueError, match="inference_mode"):
        verifier.score(frozen, "red", grad=True)
    leaf = images.clone().requires_grad_(True)
    with torch.inference_mode():  # ComfyUI runs nodes in inference mode; grad=True must still give gradients
        rewards = verifier.score(leaf, "a red apple", grad=True)
    rewards.sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_prompt_colour_gradient_ascent_moves_towards_the_named_colour():
    verifier = PromptColourVerifier()
    images = random_images(2, seed=3).requires_grad_(True)
    prompts = ["a red car", "a blue sea"]
    before = verifier.score(images, prompts)
    optimiser = torch.optim.SGD([images], lr=0.05)
    for _ in range(20):
        optimiser.zero_grad()
        (-verifier.score(images, prompts, grad=True).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            images.clamp_(0, 1)
    after = verifier.score(images, prompts)
    assert (after > before + 1).all()
    means = images.detach().mean(dim=(1, 2))
    assert means[0, 0] > means[0, 2] and means[1, 2] > means[1, 0]


def test_composite_weighted_is_sum_of_standardised_rewards_and_differentiable():
    colour, prompt = ColourfulnessVerifier(), PromptColourVerifier()
    images = random_images(5, seed=4)
    composite = CompositeVerifier([colour, prompt], [2.0, 0.5])
    a, b = colour.score(images), prompt.score(images, "red")
    expected = 2.0 * (a - a.mean()) / a.std() + 0.5 * (b - b.mean()) / b.std()
    torch.testing.assert_close(composite.score(images, "red"), expected)
    fixed = CompositeVerifier([colour], stats=[(10.0, 5.0)])
    torch.testing.assert_close(fixed.score(images), (a - 10.0) / 5.0)
    leaf = images.clone().requires_grad_(True)
    composite.score(leaf, "red", grad=True).sum().backward()
    assert composite.differentiable and leaf.grad is not None


def test_rank_average_orders_by_mean_rank_and_refuses_grad():
    rewards = torch.tensor([3.0, 1.0, 2.0, 2.0])
    torch.testing.assert_close(rank_scores(rewards), torch.tensor([1.0, 0.0, 0.5, 0.5]))
    # rank-average is invariant to any increasing transform of a verifier's rewards (its point for selection)
    generator = torch.Generator().manual_seed(5)
    for _ in range(20):
        x = torch.randn(6, generator=generator)
        torch.testing.assert_close(rank_scores(x), rank_scores(torch.exp(3 * x) - 7))
    composite = CompositeVerifier([ColourfulnessVerifier(), PromptColourVerifier()], mode="rank")
    images = random_images(4, seed=6)
    scores = composite.score(images, "green")
    assert scores.min() >= 0 and scores.max() <= 1 and not composite.differentiable
    with pytest.raises(ValueError, match="not differentiable"):
        composite.score(images, "green", grad=True)


def test_registry_lists_loaders_files_and_folders():
    names = [spec.name for spec in verifiers.available()]
    assert {"colourfulness", "prompt_colour", "image_reward", "clip_score", "aesthetic", "hpsv2", "pickscore",
            "face"} <= set(names)
    for spec in verifiers.available():
        assert callable(spec.load_function())
        assert all(f.source for f in spec.files)
        assert (spec.subfolder is None) == (not spec.files)
    assert isinstance(verifiers.load("colourfulness", chunk_size=3), ColourfulnessVerifier)
    with pytest.raises(KeyError, match="choose one of"):
        verifiers.load("no_such_verifier")


@pytest.mark.parametrize("name, filename", [("clip_score", "open_clip_pytorch_model.bin"),
                                            ("aesthetic", "sac+logos+ava1-l14-linearMSE.pth"),
                                            ("hpsv2", "HPS_v2.1_compressed.pt"), ("pickscore", "config.json"),
                                            ("face", "onet.pt")])
def test_missing_files_name_file_folder_and_source(tmp_path, name, filename):
    spec = verifiers.REGISTRY[name]
    with pytest.raises(verifiers.MissingWeightsError) as info:
        verifiers.load(name, tmp_path)
    message = str(info.value)
    assert filename in message and f"models/{spec.subfolder}/" in message and "Get it from" in message


def test_import_is_light_and_never_touches_comfyui():
    code = ("import sys, verifiers; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('open_clip', 'transformers', 'timm', 'torchvision', 'comfy', 'folder_paths')]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    forbidden = re.compile(r"^\s*(import|from)\s+(comfy|folder_paths|nodes|server|execution)\b", re.M)
    for path in (REPO / "verifiers").glob("*.py"):
        assert not forbidden.search(path.read_text()), path


def test_prompt_colour_warns_for_every_prompt_that_names_no_colour(caplog):
    verifier = PromptColourVerifier()
    images = random_images(2, seed=7)
    with caplog.at_level("WARNING", logger="verifiers.simple"):
        for prompt in ("a photo of a cat", "a photo of a cat", "a dog at noon", "a red dog"):
            rewards = verifier.score(images, prompt)
    warned = [r.getMessage() for r in caplog.records if "names no colour" in r.getMessage()]
    assert len(warned) == 2 and "a dog at noon" in warned[1] and "use another verifier" in warned[1]
    assert (rewards < 0).all()  # a named colour scores again


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def test_key_fields_are_plain_data_and_follow_the_settings():
    """Verifier.key_fields: what the state key reads of a verifier besides its weights (bridge/state_key.py)."""
    colour, prompt = ColourfulnessVerifier(), PromptColourVerifier()
    assert colour.key_fields() == {"name": "colourfulness", "differentiable": True, "needs_prompt": False}
    mix = CompositeVerifier([colour, prompt], [1.0, 2.0])
    fields = mix.key_fields()
    assert _plain(fields) and fields["parts"] == [colour.key_fields(), prompt.key_fields()]
    assert CompositeVerifier([colour, prompt], [1.0, 3.0]).key_fields() != fields
    assert CompositeVerifier([colour, prompt], [1.0, 2.0], mode="rank").key_fields() != fields
