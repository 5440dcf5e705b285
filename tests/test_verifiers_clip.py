"""open_clip-based verifiers (CLIP score, aesthetic, HPSv2) and PickScore on tiny real-format files."""
from __future__ import annotations

import pathlib

import pytest
import torch
import torch.nn.functional as F

import verifiers
from verifier_fixtures import write_aesthetic_head, write_open_clip_files, write_pickscore_folder
from verifiers.open_clip_loader import wants_quick_gelu

open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("open_clip")
    write_open_clip_files(folder, torch.Generator().manual_seed(0))
    write_aesthetic_head(folder / "sac+logos+ava1-l14-linearMSE.pth", torch.Generator().manual_seed(1))
    return folder


def reference_clip(folder: pathlib.Path, quick_gelu: bool = False):
    """open_clip's own model, transform and tokenizer for the same files."""
    model, _, transform = open_clip.create_model_and_transforms(f"local-dir:{folder}", force_quick_gelu=quick_gelu)
    return model.eval(), transform, open_clip.get_tokenizer(f"local-dir:{folder}")


def test_clip_score_matches_open_clip_pipeline(clip_folder):
    from PIL import Image
    verifier = verifiers.load("clip_score", clip_folder)
    model, transform, tokenizer = reference_clip(clip_folder)
    images_u8 = torch.randint(0, 256, (2, 64, 64, 3), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    prompts = ["a red car", "a photo of a dog " * 30]  # the second is far over 77 tokens: truncated
    with torch.no_grad():
        pixels = torch.stack([transform(Image.fromarray(im.numpy())) for im in images_u8])
        image = F.normalize(model.encode_image(pixels), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(prompts)), dim=-1)
        expected = model.logit_scale.exp() * (image * text).sum(-1)
    got = verifier.score(images_u8.float() / 255, prompts)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
    # each image is scored against its own prompt (not the first prompt of the batch)
    swapped = verifier.score(images_u8.float() / 255, prompts[::-1])
    assert not torch.allclose(got, swapped)


def test_quick_gelu_is_kept_and_inferred_for_openai_weights(tmp_path):
    weights = write_open_clip_files(tmp_path / "q", torch.Generator().manual_seed(3), quick_gelu=True)
    verifier = verifiers.load("clip_score", weights.parent)
    images = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(4))
    quick, _, _ = reference_clip(weights.parent, quick_gelu=True)
    with torch.no_grad():
        ours = F.normalize(verifier.model.encode_image(torch.zeros(1, 3, 64, 64) + 0.3), dim=-1)
        theirs = F.normalize(quick.encode_image(torch.zeros(1, 3, 64, 64) + 0.3), dim=-1)
    torch.testing.assert_close(ours, theirs)
    assert verifier.score(images, "a cat").shape == (2,)
    gelu_kinds = {type(m).__name__ for m in verifier.model.modules() if "GELU" in type(m).__name__}
    assert gelu_kinds == {"QuickGELU"}
    assert wants_quick_gelu("ViT-L-14", pathlib.Path("/m/vit_large_patch14_clip_224.openai/open_clip_model.bin"), None)
    assert not wants_quick_gelu("ViT-L-14-quickgelu", pathlib.Path("/m/openai.bin"), None)  # config already has it
    assert not wants_quick_gelu("ViT-H-14", pathlib.Path("/m/laion2b.bin"), None)
    assert not wants_quick_gelu("ViT-L-14", pathlib.Path("/m/openai.bin"), False)


def test_aesthetic_uses_l2_normalised_embeddings_and_gives_gradients(clip_folder):
    with torch.inference_mode():  # weights as a ComfyUI loader node makes them
        verifier = verifiers.load("aesthetic", clip_folder, chunk_size=2)
    images = torch.rand(3, 80, 64, 3, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    rewards = verifier.score(images, None, grad=True)
    rewards.sum().backward()
    assert images.grad.abs().sum() > 0
    with torch.no_grad():
        pixels = verifiers.preprocess.clip_preprocess(images.detach().permute(0, 3, 1, 2), 64)
        embedding = verifier.model.encode_image(pixels)
        normalised = verifier.head(F.normalize(embedding, dim=-1))
        raw = verifier.head(embedding)
    torch.testing.assert_close(rewards.detach(), normalised, atol=1e-5, rtol=1e-5)
    assert embedding.norm(dim=-1).sub(1).abs().max() > 0.1 and not torch.allclose(raw, normalised, atol=1e-3)


def test_hpsv2_reads_wrapped_checkpoints_and_scores_cosines(tmp_path):
    write_open_clip_files(tmp_path, torch.Generator().manual_seed(6), weights_name="HPS_v2.1_compressed.pt",
                          wrap_state_dict=True)
    verifier = verifiers.load("hpsv2", tmp_path)
    rewards = verifier.score(torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(7)), "a cat")
    assert verifier.name == "hpsv2" and rewards.abs().max() <= 1.0


def test_wrong_architecture_for_weights_is_a_clear_error(tmp_path, clip_folder):
    import json
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {
        "embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}}))
    (tmp_path / "open_clip_pytorch_model.bin").write_bytes((clip_folder / "open_clip_pytorch_model.bin").read_bytes())
    with pytest.raises(ValueError, match="does not fit the open_clip architecture"):
        verifiers.load("clip_score", tmp_path)


def test_pickscore_matches_transformers_clip_logits(tmp_path):
    write_pickscore_folder(tmp_path, torch.Generator().manual_seed(8))
    verifier = verifiers.load("pickscore", tmp_path)
    images = torch.rand(2, 32, 32, 3, generator=torch.Generator().manual_seed(9))
    prompts = ["a red car", "an astronaut riding a horse"]
    with torch.no_grad():
        pixels = verifiers.preprocess.clip_preprocess(images.permute(0, 3, 1, 2), 32)
        input_ids = open_clip.tokenize(prompts)
        attention_mask = (input_ids != 0).long()
        logits = verifier.model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixels).logits_per_image
    torch.testing.assert_close(verifier.score(images, prompts), logits.diagonal(), atol=1e-4, rtol=1e-5)
    leaf = images.clone().requires_grad_(True)
    verifier.score(leaf, prompts, grad=True).sum().backward()
    assert leaf.grad.abs().sum() > 0
