"""The digits world: its build code still trains, and the committed weights work through ComfyUI's own loaders."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from worlds.digits import vae
from worlds.digits.build import WEIGHTS_DIR
from worlds.digits.data import load_digits_split

pytest.importorskip("sklearn")
MANIFEST = json.loads((WEIGHTS_DIR / "world.json").read_text())


@pytest.fixture(scope="module")
def split():
    return load_digits_split(seed=0)


def test_split_is_disjoint_and_stratified(split):
    train, held = set(split.train.tolist()), set(split.held_out.tolist())
    half_a, half_b = set(split.train_halves[0].tolist()), set(split.train_halves[1].tolist())
    assert not train & held and not half_a & half_b and half_a | half_b == train
    assert len(train) + len(held) == len(split.labels) == 1797
    assert torch.bincount(split.labels[split.held_out], minlength=10).min() >= 30


def test_denoiser_training_lowers_the_loss(split):
    from worlds.digits.train_denoiser import DenoiserConfig, train_denoiser

    idx = split.train[:256]
    cfg = DenoiserConfig(steps=200, batch=16, lr=1e-3, warmup=20, channels=32, threads=1, log_every=25, bf16=False)
    result = train_denoiser(split.grey[idx], split.labels[idx], cfg)
    first, last = result.losses[0][1], result.losses[-1][1]
    assert last < 0.5 * first, result.losses
    assert result.embeddings.shape == (11, 4, 768)


def test_classifier_training_beats_chance(split):
    from worlds.digits.classifiers import JUDGE_ARCH, ClassifierConfig, accuracy, images_of, normalisation, \
        train_classifier

    idx = split.train_halves[1][::2]
    model = train_classifier(JUDGE_ARCH, split.grey[idx], split.labels[idx], ClassifierConfig(epochs=4, batch=32))
    held = split.held_out[::3]
    acc = accuracy(model, images_of(split.grey[held]), split.labels[held], *normalisation(JUDGE_ARCH))
    assert acc > 0.3, acc      # chance is 0.1


def test_constructed_vae_matches_its_torch_definition_and_float8_file():
    from safetensors.torch import load_file

    stored = load_file(str(WEIGHTS_DIR / MANIFEST["vae"]["file"]))
    for key, value in vae.taesd_state_dict().items():
        assert torch.equal(stored[key].float(), value), key
    grey = load_digits_split(seed=0).grey[:4]
    z = vae.grey_to_latent(grey)
    assert torch.allclose(vae.encode(vae.decode(z)), z, atol=0.05)
    assert (vae.decode(z)[:, :, ::8, ::8] - grey[:, None]).abs().max() < 2e-3


@pytest.fixture(scope="module")
def digits_models(comfy, tiny_models):
    """The committed weights, visible to ComfyUI's UNETLoader / VAELoader beside the tiny test models."""
    models = Path(tiny_models["models_dir"])
    for kind, key in (("unet", "unet"), ("vae", "vae")):
        target = models / kind / MANIFEST[key]["file"]
        if not target.exists():
            shutil.copyfile(WEIGHTS_DIR / MANIFEST[key]["file"], target)
    return comfy


def _judge():
    import timm
    from safetensors.torch import load_file

    entry = MANIFEST["classifiers"]["judge"]
    model = timm.create_model(entry["arch"], num_classes=10, pretrained=False)
    model.load_state_dict(load_file(str(WEIGHTS_DIR / entry["file"])))
    model = model.float().eval()
    mean, std = torch.tensor(entry["mean"])[:, None, None], torch.tensor(entry["std"])[:, None, None]
    return lambda images: model((images - mean) / std).argmax(1)


def test_vae_round_trip_through_comfyui(digits_models):
    grey = load_digits_split(seed=0).grey[:3]
    z = vae.grey_to_latent(grey)
    prompt = {
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": MANIFEST["vae"]["file"]}},
        "dec": {"class_type": "VAEDecode", "inputs": {"samples": ["z", 0], "vae": ["vae", 0]}},
        "enc": {"class_type": "VAEEncode", "inputs": {"pixels": ["dec", 0], "vae": ["vae", 0]}},
        "z": {"class_type": "DiffusionSearchTestLatent", "inputs": {"key": "digits_z"}},
        "cap_img": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["dec", 0], "key": "img"}},
        "cap_z": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["enc", 0], "key": "z"}},
    }
    digits_models.test_nodes.LATENTS["digits_z"] = z
    digits_models.run(prompt)
    images = digits_models.captured["img"].movedim(-1, 1)          # ComfyUI IMAGE is (B, H, W, C)
    assert images.shape == (3, 3, 64, 64)
    assert (images - vae.decode(z)).abs().max() < 1e-3               # looks like the digit: the 8x upsampled grey
    assert (images[:, :, ::8, ::8] - grey[:, None]).abs().max() < 3e-3
    assert torch.allclose(digits_models.captured["z"]["samples"], z, atol=0.05)


def test_committed_world_generates_digits_the_judge_recognises(digits_models):
    import comfy.sd

    from safetensors.torch import load_file

    from worlds.digits.unet import DigitsUNet

    path = str(WEIGHTS_DIR / MANIFEST["unet"]["file"])
    patcher = (getattr(comfy.sd, "load_diffusion_model", None) or comfy.sd.load_unet)(path)
    assert type(patcher.model.model_config).__name__ == "SD15"
    ours = DigitsUNet()
    ours.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    g = torch.Generator().manual_seed(0)
    x, context = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 768, generator=g)
    t = torch.tensor([20.0, 700.0])
    with torch.no_grad():   # ComfyUI computes the function the build trained
        theirs = patcher.model.diffusion_model.float()(x, t, context=context)
        assert torch.allclose(ours.eval()(x, t, context), theirs, atol=1e-4, rtol=1e-4)

    judge, correct = _judge(), []
    for digit in range(10):
        prompt = {
            "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": MANIFEST["unet"]["file"],
                                                             "weight_dtype": "default"}},
            "vae": {"class_type": "VAELoader", "inputs": {"vae_name": MANIFEST["vae"]["file"]}},
            "pos": {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": f"a handwritten {digit}"}},
            "neg": {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": ""}},
            "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
            "sample": {"class_type": "KSampler", "inputs": {
                "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
                "seed": digit, "steps": 12, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1.0}},
            "dec": {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["vae", 0]}},
            "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["dec", 0], "key": "digits"}},
        }
        digits_models.run(prompt)
        images = digits_models.captured["digits"].movedim(-1, 1)
        with torch.no_grad():
            correct.append((judge(images) == digit).float())
    per_class = torch.stack(correct).mean(1)
    assert per_class.mean() >= 0.7 and (per_class > 0).sum() >= 8, per_class.tolist()


def test_digits_conditioning_reads_the_digit_from_the_prompt(comfy, caplog):
    import sys

    node_module = sys.modules[f"{comfy.pack.__name__}.nodes.digits_conditioning"]
    NULL_ROW, class_embedding, digit_in_prompt = (node_module.NULL_ROW, node_module.class_embedding,
                                                  node_module.digit_in_prompt)

    assert digit_in_prompt("a handwritten 7") == 7
    assert digit_in_prompt("A handwritten Three, please") == 3
    assert digit_in_prompt("digit 0") == 0
    assert digit_in_prompt("someone") is None and digit_in_prompt("x10") is None and digit_in_prompt("") is None
    from safetensors.torch import load_file

    table = load_file(str(WEIGHTS_DIR / MANIFEST["embeddings"]["file"]))["embeddings"].float()
    assert torch.equal(class_embedding("a handwritten 7")[0], table[7])
    assert torch.equal(class_embedding("")[0], table[NULL_ROW]) and not caplog.records
    with caplog.at_level("WARNING"):
        assert torch.equal(class_embedding("a cat")[0], table[NULL_ROW])
    assert "no digit" in caplog.text
