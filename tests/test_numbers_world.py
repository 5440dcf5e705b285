"""The numbers world: numbers on strips of one canvas (area conditioning), a learned decoder, per-position scoring."""
import shutil
import sys
from pathlib import Path

import pytest
import torch

from worlds.digits import vae
from worlds.digits.build import WEIGHTS_DIR as DIGITS_WEIGHTS
from worlds.numbers.data import compose_numbers, split_tiles
from worlds.numbers.world import VAE_FILE, WEIGHTS_DIR, numbers, read_numbers_world, strips_of

pytest.importorskip("sklearn")
torch.set_num_threads(1)
WORLD = read_numbers_world()


def test_composed_canvases_put_each_digit_in_its_slot_and_tiles_undo_it():
    grey = torch.rand(30, 8, 8)
    labels = torch.arange(30) % 10
    canvases, digits = compose_numbers(grey, labels, 3, 5, torch.Generator().manual_seed(0))
    assert canvases.shape == (5, 8, 24) and digits.shape == (5, 3)
    tiles = split_tiles(canvases[:, None], 3)[:, 0]
    for n in range(5):
        for p in range(3):
            match = [i for i in range(30) if torch.equal(grey[i], tiles[n * 3 + p])]
            assert match and labels[match[0]] == digits[n, p]
    images = canvases[:, :, :, None].expand(-1, -1, -1, 3)                 # ComfyUI IMAGE layout
    assert torch.equal(strips_of(images, 3)[..., 0], tiles)


def test_the_worlds_prompts_are_two_and_three_digit_numbers_using_every_digit():
    prompts = numbers()
    assert prompts == numbers() and len(prompts) == 20 == len(set(prompts))
    assert sorted({len(p) for p in prompts}) == [2, 3] and all(p[0] != "0" for p in prompts)
    assert set("".join(prompts)) == set("0123456789")


def test_strip_classifier_sums_each_strips_log_probability_on_the_real_judge():
    from worlds.numbers.world import STRIPS
    from verifiers.classifier import split_strips

    judge = WORLD.judge.load(DIGITS_WEIGHTS)
    assert judge.layout == STRIPS
    split = __import__("worlds.digits.data", fromlist=["x"]).load_digits_split(0)
    grey, labels = split.grey[split.held_out][:6], split.labels[split.held_out][:6]
    canvas = torch.cat([grey[:3], grey[3:]], 0).reshape(2, 3, 8, 8).permute(0, 2, 1, 3).reshape(2, 8, 24)
    images = vae.decode(vae.grey_to_latent(canvas))                       # (2, 3, 64, 192)
    prompts = ["a handwritten " + "".join(str(int(d)) for d in labels[3 * i:3 * i + 3]) for i in range(2)]
    scores = judge.score_chunk(images, prompts)
    lp = judge.log_probs(split_strips(images, 3))
    expected = lp.gather(1, labels[:, None])[:, 0].reshape(2, 3).sum(1)
    assert torch.allclose(scores, expected, atol=1e-5)
    wrong = judge.score_chunk(images, [p[:-3] + p[-1] + p[-2] + p[-3] for p in prompts])
    assert (wrong < scores).all()                                         # order matters: strips are positions
    with pytest.raises(ValueError, match="multiple of 3"):
        judge.score_chunk(images[:, :, :, :190], prompts[:1] * 2)
    with pytest.raises(ValueError, match="names no label"):
        judge.score_chunk(images, ["a cat", "a dog"])


def test_the_learned_decoder_is_not_an_exact_upsampling_and_draws_what_it_learned():
    from worlds.numbers.decoder import decode, load_decoder, target_images

    decoder = load_decoder(WEIGHTS_DIR / VAE_FILE)   # the file's decoder, as VAELoader reads it
    split = __import__("worlds.digits.data", fromlist=["x"]).load_digits_split(0)
    grey = split.grey[split.held_out][:40]
    z = vae.grey_to_latent(grey)
    with torch.no_grad():
        out = decode(decoder, z)
    to_bicubic = torch.mean((out - target_images(grey)) ** 2)
    to_exact = torch.mean((out - vae.decode(z)) ** 2)
    assert to_bicubic < 0.002 and to_exact > 10 * to_bicubic, (to_bicubic, to_exact)


@pytest.fixture(scope="module")
def numbers_models(comfy, tiny_models):
    """The digits world's UNet and this world's VAE, visible to ComfyUI's loaders beside the tiny test models."""
    models = Path(tiny_models["models_dir"])
    for kind, source in (("unet", DIGITS_WEIGHTS / WORLD.unet), ("vae", WEIGHTS_DIR / VAE_FILE)):
        target = models / kind / source.name
        if not target.exists():
            shutil.copyfile(source, target)
    return comfy


def test_digits_conditioning_reads_numbers_and_puts_one_digit_on_each_strip(comfy):
    module = sys.modules[f"{comfy.pack.__name__}.nodes.digits_conditioning"]
    assert module.number_in_prompt("a handwritten 509") == [5, 0, 9]
    assert module.number_in_prompt("three") == [3] and module.number_in_prompt("a cat") is None
    assert module.digit_in_prompt("a handwritten 509") is None and module.digit_in_prompt("a 7") == 7
    with pytest.raises(ValueError, match="at most 8"):
        module.number_in_prompt("a handwritten 123456789")
    cond = module.conditioning("a handwritten 509")
    table = module._table()
    assert len(cond) == 3
    for i, (context, options) in enumerate(cond):
        assert torch.equal(context[0], table[[5, 0, 9][i]])
        assert options["area"] == ("percentage", 1.0, 1 / 3, 0.0, i / 3)
    assert "area" not in module.conditioning("a handwritten 5")[0][1]


def test_each_strip_is_sampled_as_its_digit_alone_through_comfyuis_area_conditioning(numbers_models):
    """A number's canvas through ComfyUI's sampler is its digits side by side: strip i equals the single digit d_i
    sampled from strip i's noise (the UNet sees only its strip), so errors are per digit, independent. Exact at CFG 1;
    at other CFG the unconditional prediction sees the whole canvas, which couples the strips a little."""
    import comfy.sample
    import comfy.samplers
    import comfy.sd

    module = sys.modules[f"{numbers_models.pack.__name__}.nodes.digits_conditioning"]
    patcher = (getattr(comfy.sd, "load_diffusion_model", None) or comfy.sd.load_unet)(
        str(DIGITS_WEIGHTS / WORLD.unet))
    noise = torch.randn(1, 4, 8, 16, generator=torch.Generator().manual_seed(5))
    sampler = comfy.samplers.sampler_object("euler")
    compat = sys.modules[f"{numbers_models.pack.__name__}.bridge.compat"]
    sigmas = compat.calculate_sigmas(patcher, "normal", 6).cpu()

    def sample(text, noise_part):
        return comfy.sample.sample_custom(patcher, noise_part, 1.0, sampler, sigmas, module.conditioning(text),
                                          module.conditioning(""), torch.zeros_like(noise_part), seed=0)

    whole = sample("a handwritten 37", noise)
    assert torch.allclose(whole[..., :8], sample("a handwritten 3", noise[..., :8]), atol=2e-3)
    assert torch.allclose(whole[..., 8:], sample("a handwritten 7", noise[..., 8:]), atol=2e-3)
    assert not torch.allclose(whole[..., 8:], sample("a handwritten 3", noise[..., 8:]), atol=2e-3)


def test_the_numbers_vae_loads_in_comfyui_and_decodes_a_number(numbers_models):
    split = __import__("worlds.digits.data", fromlist=["x"]).load_digits_split(0)
    canvas = split.grey[split.held_out][:2].permute(1, 0, 2).reshape(1, 8, 16)
    z = vae.grey_to_latent(canvas)
    numbers_models.test_nodes.LATENTS["numbers_z"] = z
    numbers_models.run({
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": VAE_FILE}},
        "z": {"class_type": "DiffusionSearchTestLatent", "inputs": {"key": "numbers_z"}},
        "dec": {"class_type": "VAEDecode", "inputs": {"samples": ["z", 0], "vae": ["vae", 0]}},
        "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["dec", 0], "key": "numbers"}}})
    images = numbers_models.captured["numbers"].movedim(-1, 1)
    from worlds.numbers.decoder import target_images
    assert images.shape == (1, 3, 64, 128)
    assert torch.mean((images - target_images(canvas)) ** 2) < 0.002


def test_this_worlds_guide_and_selector_read_its_smooth_digits_where_the_digits_guide_cannot():
    """The world's guide and selector learn from what its decoder draws; the digits guide (blocky exact decodes)
    misreads those strokes, so it could not guide here. Held-out digits, neither half of the training split."""
    import timm

    from safetensors.torch import load_file

    from worlds.digits.classifiers import accuracy, normalisation
    from worlds.numbers.classifiers import learned_render

    split = __import__("worlds.digits.data", fromlist=["x"]).load_digits_split(0)
    held = split.held_out[:180]                     # half the held-out digits: the same verdicts, half the time
    images = learned_render(WEIGHTS_DIR / VAE_FILE)(split.grey[held])
    labels = split.labels[held]

    def held_out_accuracy(folder, classifier):
        net = timm.create_model(classifier.architecture, pretrained=False, num_classes=10)
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / classifier.weights)).items()})
        return accuracy(net, images, labels, *normalisation(classifier.architecture))

    from worlds.digits.graphs import read_world
    digits_guide = read_world(DIGITS_WEIGHTS).guide
    assert held_out_accuracy(WEIGHTS_DIR, WORLD.guide) > 0.95
    assert held_out_accuracy(WEIGHTS_DIR, WORLD.select) > 0.95
    assert held_out_accuracy(DIGITS_WEIGHTS, WORLD.judge) > 0.95
    assert held_out_accuracy(DIGITS_WEIGHTS, digits_guide) < 0.8
    assert len({WORLD.guide.architecture, WORLD.select.architecture, WORLD.judge.architecture}) == 3


def test_both_worlds_weights_fit_the_30_mb_budget_and_the_constructed_vae_is_made_exactly():
    """What git holds of the two worlds stays under 30 MB; the digits VAE is not among it: its weights are written
    in code, and the file made on first read loads to exactly those weights."""
    import json

    from safetensors.torch import load_file

    from worlds.digits.graphs import MANIFEST, construct_vae

    manifest = json.loads((DIGITS_WEIGHTS / MANIFEST).read_text())
    constructed = construct_vae(DIGITS_WEIGHTS, manifest)
    assert constructed.name == manifest["vae"]["file"] and manifest["vae"]["made"].startswith("constructed")
    made = load_file(str(constructed))
    assert made.keys() == vae.taesd_state_dict().keys()
    assert all(torch.equal(made[k].float(), v) for k, v in vae.taesd_state_dict().items())
    committed = [p for folder in (DIGITS_WEIGHTS, WEIGHTS_DIR) for p in folder.iterdir()
                 if p.is_file() and p != constructed]
    assert {p.name for p in committed} >= {WORLD.unet, WORLD.guide.weights, WORLD.select.weights, VAE_FILE}
    assert sum(p.stat().st_size for p in committed) < 30_000_000


def test_the_report_ranks_by_the_judge_and_relates_dfs_compute_to_difficulty(tmp_path, capsys):
    import json

    from worlds.numbers import report

    labels = ["12", "345", "67"]

    def row(method, n, acc, nfe_per_label, guide_acc=None):
        per_class = [{"label": k, "judge_acc": a, "judge_position_acc": a, "nfe": e}
                     for k, a, e in zip(labels, acc, nfe_per_label)]
        mean = sum(acc) / 3
        return {"cfg": 0.75, "n": n, "method": method, "label": method, "budget": 8 * n, "nfe": sum(nfe_per_label) / 3,
                "judge_acc": mean, "judge_logp": -1.0, "guide_acc": guide_acc if guide_acc is not None else mean,
                "guide_reward": -0.5, "seconds_per_latent": 1.0, "per_class": per_class}

    rows = [row("plain", 1, [1.0, 0.0, 0.5], [8, 8, 8]), row("best_of_n", 4, [1.0, 0.5, 1.0], [32, 32, 32]),
            row("dfs", 4, [1.0, 1.0, 1.0], [8, 30, 16]), row("local_guidance", 4, [0.5, 0.5, 0.5], [32] * 3, 1.0)]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"grid": {"seeds": 6}, "rows": rows}))
    assert report.main([str(path), "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    ranking = [line.split(" | ")[1] for line in out.splitlines() if line.startswith("| ") and " % ± " in line]
    assert ranking == ["dfs", "best_of_n", "local_guidance", "plain"]       # by the judge, best first
    assert "| 0.75 | 4 (32 NFE cap) | 1.00 | 8.0 (0 %) | 30.0 (100 %) | 18.0 |" in out   # hard numbers got the NFE
    assert "| local_guidance | 100.0 % | 50.0 % | +50.0 |" in out           # the guide believes, the judge does not
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert report.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0 and report.spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert abs(report.spearman([1, 1, 2], [1, 2, 3]) - 0.8660254) < 1e-6  # ties share their mean rank
