"""ImageReward: our architecture vs the `image-reward` package's own code on one shared random state dict."""
from __future__ import annotations

import importlib
import os
import sys
import sysconfig
import types

import pytest
import torch

from verifier_fixtures import TINY_VISION, randomise_, write_image_reward_files, write_tiny_vocab, med_config, TINY_WORDS
from verifiers import MissingWeightsError, load
from verifiers.image_reward import load_image_reward

PACKAGE_DIR = os.path.join(sysconfig.get_paths()["purelib"], "ImageReward")


def import_official_image_reward(vocab_path, vision=TINY_VISION):
    """Import image-reward 1.5's scoring code under transformers 5 / timm 1 with test-only shims.

    Shims (see verifier-notes.md): skip the package __init__ (it imports diffusers/clip for ReFL and baselines),
    a stub `clip` module, helpers moved to transformers.pytorch_utils, BertModel mask helpers removed in 5.x,
    post_init before init_weights, an offline tokenizer and a reduced-size ViT built by BLIP's own VisionTransformer class.
    """
    if not os.path.isdir(PACKAGE_DIR):
        pytest.skip("image-reward is not installed (pip install --no-deps image-reward==1.5)")
    for name, path in (("ImageReward", PACKAGE_DIR), ("ImageReward.models", os.path.join(PACKAGE_DIR, "models"))):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules.setdefault(name, module)
    sys.modules.setdefault("clip", types.ModuleType("clip"))
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    from transformers import BertTokenizer

    def no_pruning(*args, **kwargs):
        raise NotImplementedError("head pruning is not on the scoring path")

    for helper in ("apply_chunking_to_forward", "prune_linear_layer"):
        if not hasattr(modeling_utils, helper):
            setattr(modeling_utils, helper, getattr(pytorch_utils, helper))
    if not hasattr(modeling_utils, "find_pruneable_heads_and_indices"):
        modeling_utils.find_pruneable_heads_and_indices = no_pruning
    med = importlib.import_module("ImageReward.models.BLIP.med")

    def invert_attention_mask(self, mask):
        extended = mask[:, None, None, :] if mask.dim() == 2 else mask[:, None, :, :]
        return (1.0 - extended.to(self.dtype)) * torch.finfo(self.dtype).min

    def get_head_mask(self, head_mask, num_layers):
        return [None] * num_layers

    if not hasattr(med.BertModel, "invert_attention_mask"):
        med.BertModel.invert_attention_mask = invert_attention_mask
    if not hasattr(med.BertModel, "get_head_mask"):
        med.BertModel.get_head_mask = get_head_mask
    if not getattr(med.BertModel, "_post_init_shim", False):  # transformers 5 needs post_init before init_weights
        base_init_weights = modeling_utils.PreTrainedModel.init_weights

        def init_weights(self):
            if getattr(self, "_inside_post_init", False):  # post_init calls init_weights itself
                return base_init_weights(self)
            self._inside_post_init = True
            try:
                self.post_init()
            finally:
                self._inside_post_init = False

        med.BertModel.init_weights = init_weights
        med.BertModel._post_init_shim = True
    blip_pretrain = importlib.import_module("ImageReward.models.BLIP.blip_pretrain")
    vit = importlib.import_module("ImageReward.models.BLIP.vit")

    def offline_tokenizer():
        tokenizer = BertTokenizer(vocab_file=str(vocab_path))
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        return tokenizer

    def reduced_vit(*args, **kwargs):
        encoder = vit.VisionTransformer(img_size=vision.image_size, patch_size=vision.patch_size,
                                        embed_dim=vision.width, depth=vision.depth, num_heads=vision.heads,
                                        mlp_ratio=vision.mlp_hidden / vision.width)
        return encoder, vision.width

    blip_pretrain.init_tokenizer = offline_tokenizer
    blip_pretrain.create_vit = reduced_vit
    return importlib.import_module("ImageReward.utils")


@pytest.fixture(scope="module")
def shared_checkpoint(tmp_path_factory):
    """One random state dict made by the official class, saved as ImageReward.pt with its med_config/vocab."""
    import json
    folder = tmp_path_factory.mktemp("image_reward")
    vocab = write_tiny_vocab(folder / "vocab.txt")
    (folder / "med_config.json").write_text(json.dumps(med_config(len(TINY_WORDS) + 9)))
    utils = import_official_image_reward(vocab)
    official_cls = importlib.import_module("ImageReward.ImageReward").ImageReward
    model = official_cls(med_config=str(folder / "med_config.json"), device="cpu")
    state = model.state_dict()
    randomise_(state, torch.Generator().manual_seed(0))
    torch.save(state, folder / "ImageReward.pt")
    official = utils.load(str(folder / "ImageReward.pt"), device="cpu", med_config=str(folder / "med_config.json"))
    loaded = official.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state), "official loader did not load the shared file"
    return folder, official.eval()


def test_matches_official_rewards_and_gradients(shared_checkpoint):
    folder, official = shared_checkpoint
    ours = load_image_reward(folder)
    prompts = ["a red car on a tree", "a portrait of an astronaut riding a horse at night"]
    tokens = official.blip.tokenizer(prompts, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    our_ids, our_mask = ours.tokenize(prompts)
    assert torch.equal(our_ids, tokens.input_ids) and torch.equal(our_mask, tokens.attention_mask)

    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    theirs_in = pixels.clone().requires_grad_(True)
    ours_in = pixels.clone().requires_grad_(True)
    theirs = official.score_gard(tokens.input_ids, tokens.attention_mask, theirs_in).squeeze(-1)
    mine = ours.raw_score(ours_in, our_ids, our_mask)
    theirs.sum().backward()
    mine.sum().backward()
    assert theirs.std() > 0.1, "random rewards should differ between images"
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    scale = theirs_in.grad.abs().max()
    assert scale > 0
    torch.testing.assert_close(ours_in.grad / scale, theirs_in.grad / scale, atol=1e-5, rtol=0)


def test_full_score_path_matches_official_pil_score(shared_checkpoint):
    """Our IMAGE-layout path (torch preprocessing, tokenising, standardising) equals the package's `score`."""
    from PIL import Image
    folder, official = shared_checkpoint
    ours = load_image_reward(folder)
    image_u8 = torch.randint(0, 256, (32, 32, 3), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    prompt = "a photo of a green house"
    # the package's own transform at the reduced ViT's resolution (the image is already that size: no resampling)
    official.preprocess = importlib.import_module("ImageReward.ImageReward")._transform(TINY_VISION.image_size)
    expected = official.score(prompt, Image.fromarray(image_u8.numpy()))
    got = ours.score(image_u8[None].float() / 255.0, prompt)
    assert got.shape == (1,) and got.dtype == torch.float32
    assert abs(got.item() - expected) < 1e-5


def test_missing_checkpoint_names_file_folder_and_source(tmp_path):
    write_tiny_vocab(tmp_path / "vocab.txt")
    with pytest.raises(MissingWeightsError) as info:
        load("image_reward", tmp_path)
    message = str(info.value)
    assert "ImageReward.pt" in message and "models/image_reward/" in message and "huggingface.co/THUDM" in message


def test_registry_loader_chunking_and_grad_under_inference_mode(tmp_path):
    folder = write_image_reward_files(tmp_path / "ir", torch.Generator().manual_seed(3))
    with torch.inference_mode():  # ComfyUI loads weights as inference tensors
        verifier = load("image_reward", folder, chunk_size=2)
    images = torch.rand(5, 40, 36, 3, generator=torch.Generator().manual_seed(4))
    whole = verifier.score(images, "a blue sky")
    assert whole.shape == (5,)
    singles = torch.cat([verifier.score(images[i:i + 1], "a blue sky") for i in range(5)])
    torch.testing.assert_close(whole, singles, atol=1e-5, rtol=1e-5)
    images.requires_grad_(True)
    rewards = verifier.score(images, "a blue sky", grad=True)
    rewards.sum().backward()
    assert images.grad.shape == images.shape and images.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in verifier.parameters())


def test_long_prompt_is_truncated_to_35_tokens(tmp_path, caplog):
    folder = write_image_reward_files(tmp_path / "ir", torch.Generator().manual_seed(5))
    verifier = load_image_reward(folder)
    ids, mask = verifier.tokenize(["a red car " * 40])
    assert ids.shape == (1, 35) and mask.sum() == 35
    images = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(6))
    long_reward = verifier.score(images, "a red car " * 40)
    cut_reward = verifier.score(images, " ".join(("a red car " * 40).split()[:33]))
    torch.testing.assert_close(long_reward, cut_reward)
