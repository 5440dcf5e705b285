"""Classifier verifier on a tiny timm model built and saved here: rewards, gradients, labels from prompts, errors."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import verifiers
from verifiers.classifier import ClassifierVerifier

timm = pytest.importorskip("timm")

ARCH = "test_resnet"
LABELS = ["zero", "one", "tabby cat, tabby", "cat", "dog", "goldfish", "crane", "crane", "7", "great white shark"]
SIZE = 32


def _tiny_net(seed: int = 0, in_chans: int = 3, num_classes: int = len(LABELS)) -> torch.nn.Module:
    torch.manual_seed(seed)   # timm initialises from the global generator; fix it so the files are reproducible
    net = timm.create_model(ARCH, pretrained=False, num_classes=num_classes, in_chans=in_chans).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():   # spread the logits so rewards differ visibly between images
        for name, param in net.named_parameters():
            if name.startswith("fc."):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return net


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("classifiers")
    net = _tiny_net()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(root / "tiny.safetensors"))
    torch.save({"state_dict": state}, root / "tiny.pt")
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    torch.save(_tiny_net(1, in_chans=1).state_dict(), root / "grey.pt")
    return root


def _load(folder, **options):
    options = {"weights": "tiny.safetensors", "architecture": ARCH, "input_size": SIZE, "normalisation": "inception",
               **options}
    return verifiers.load("classifier", folder, **options)


def _images(count=5, size=48, seed=0):
    return torch.rand(count, size, size, 3, generator=torch.Generator().manual_seed(seed))


def _reference_log_probs(folder, images, in_chans=3, name="tiny.safetensors"):
    from safetensors.torch import load_file

    net = timm.create_model(ARCH, pretrained=False, num_classes=len(LABELS), in_chans=in_chans).eval()
    net.load_state_dict(load_file(str(folder / name)) if name.endswith("safetensors") else torch.load(folder / name))
    pixels = F.interpolate(images.permute(0, 3, 1, 2), size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                           antialias=True)
    if in_chans == 1:
        pixels = pixels.mean(dim=1, keepdim=True)
    return torch.log_softmax(net((pixels - 0.5) / 0.5), dim=-1)


@pytest.mark.parametrize("weights", ["tiny.safetensors", "tiny.pt"])
def test_rewards_are_log_softmax_of_the_model(folder, weights):
    verifier = _load(folder, weights=weights, label="dog", chunk_size=2)
    images = _images()
    expected = _reference_log_probs(folder, images)
    torch.testing.assert_close(verifier.score(images, "ignored"), expected[:, LABELS.index("dog")])
    torch.testing.assert_close(verifier.predict(images), expected)
    assert len({round(v, 4) for v in verifier.score(images).tolist()}) == len(images)  # rewards tell images apart


def test_label_from_prompt_per_image(folder):
    verifier = _load(folder, label="from prompt")
    assert verifier.needs_prompt
    images = _images(4)
    prompts = ["a photo of a Tabby Cat on a sofa", "a cat", "a handwritten 7", "a DOG."]
    expected = _reference_log_probs(folder, images)
    wanted = [2, 3, 8, 4]
    torch.testing.assert_close(verifier.score(images, prompts), expected[torch.arange(4), wanted])
    assert verifier.class_index("a great white shark") == 9
    assert verifier.class_index("a tabby in the sun") == 2
    with pytest.raises(ValueError, match=r"ambiguous: it names 'one', 'dog'"):   # "one" is a label here
        verifier.class_index("one dog")


@pytest.mark.parametrize("prompt, message", [
    ("a bird in the sky", r"names no label.*'zero', 'one', 'tabby cat'"),
    ("a 7x7 grid", "names no label"),
    ("a cat and a dog", r"ambiguous.*'cat'.*'dog'|ambiguous.*'dog'.*'cat'"),
    ("a crane", r"ambiguous"),
])
def test_prompts_without_one_label_get_clear_errors(folder, prompt, message):
    with pytest.raises(ValueError, match=message):
        _load(folder).score(_images(1), prompt)


def test_gradients_flow_to_the_images_and_match_the_model(folder):
    with torch.inference_mode():   # as ComfyUI's loader node builds it
        verifier = _load(folder, label="goldfish")
    images = _images(3).requires_grad_(True)
    verifier.score(images, grad=True).sum().backward()
    reference = _images(3).requires_grad_(True)
    _reference_log_probs(folder, reference)[:, LABELS.index("goldfish")].sum().backward()
    assert images.grad.abs().sum() > 0
    torch.testing.assert_close(images.grad, reference.grad, rtol=1e-4, atol=1e-6)


def test_gradient_ascent_raises_the_label_probability(folder):
    verifier = _load(folder, label="#5")
    images = _images(2, size=32, seed=3).requires_grad_(True)
    before = verifier.score(images)
    optimiser = torch.optim.Adam([images], lr=0.05)
    for _ in range(10):
        optimiser.zero_grad()
        (-verifier.score(images, grad=True).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            images.clamp_(0, 1)
    assert (verifier.score(images) > before + 0.5).all(), (before, verifier.score(images))


def test_grey_classifier_sees_the_mean_of_the_channels(folder):
    verifier = _load(folder, weights="grey.pt", label="cat")
    images = _images(3, seed=4)
    expected = _reference_log_probs(folder, images, in_chans=1, name="grey.pt")[:, 3]
    torch.testing.assert_close(verifier.score(images), expected)


def test_settings_file_beside_the_weights(folder, tmp_path):
    (tmp_path / "judge.safetensors").write_bytes((folder / "tiny.safetensors").read_bytes())
    (tmp_path / "names.txt").write_text((folder / "labels.txt").read_text())
    (tmp_path / "judge.json").write_text(json.dumps({"architecture": ARCH, "labels": "names.txt", "input_size": SIZE,
                                                     "mean": [0.5] * 3, "std": [0.5] * 3}))
    verifier = verifiers.load("classifier", weights=str(tmp_path / "judge.safetensors"), label="one")
    torch.testing.assert_close(verifier.score(_images(2)), _reference_log_probs(folder, _images(2))[:, 1])
    assert verifier.preprocessing.input_size == SIZE
    default = verifiers.load("classifier", weights=str(tmp_path / "judge.safetensors"), label="one",
                             input_size=16, normalisation="none")   # explicit settings win over the file
    assert default.preprocessing.input_size == 16 and default.preprocessing.mean == (0.0, 0.0, 0.0)


def test_dtype_and_chunking_do_not_change_rewards(folder):
    images = _images(5)
    base = _load(folder, label="dog", chunk_size=32).score(images)
    torch.testing.assert_close(_load(folder, label="dog", chunk_size=1).score(images), base)
    doubled = _load(folder, label="dog", dtype=torch.float64).score(images)
    assert doubled.dtype == torch.float32
    torch.testing.assert_close(doubled, base, rtol=1e-4, atol=1e-4)


def test_unknown_label_lists_the_labels(folder):
    with pytest.raises(ValueError, match=r"'horse' is not in labels file labels.txt; its labels are: 'zero', 'one', "
                                         r"'tabby cat', 'cat', 'dog', 'goldfish', 'crane', 'crane', '7', 'great white"):
        _load(folder, label="horse")
    with pytest.raises(ValueError, match=r"names 2 classes.*#6, #7.*'#<index>'"):
        _load(folder, label="crane")
    with pytest.raises(ValueError, match="only 10 classes"):
        _load(folder, label="#10")


@pytest.mark.parametrize("architecture", ["test_convnext", "resnet18"])
def test_weights_of_another_architecture_name_file_and_architecture(folder, architecture):
    with pytest.raises(ValueError, match=rf"tiny.safetensors does not fit timm architecture '{architecture}'.*Pick the "
                                         "architecture"):
        _load(folder, architecture=architecture)


def test_labels_of_another_size_name_both_files(folder, tmp_path):
    (tmp_path / "nine.txt").write_text("\n".join(LABELS[:9]))
    with pytest.raises(ValueError, match=r"tiny.safetensors have 10 classes but labels file .*nine.txt lists 9"):
        _load(folder, labels=str(tmp_path / "nine.txt"))


def test_unknown_or_unset_architecture(folder):
    with pytest.raises(ValueError, match=r"unknown timm architecture 'resnet_9000'.*tiny.safetensors"):
        _load(folder, architecture="resnet_9000")
    with pytest.raises(ValueError, match=r"Set 'architecture'.*tiny.json"):
        _load(folder, architecture="")


@pytest.mark.parametrize("name, content, message", [
    ("empty.safetensors", b"", r"empty.safetensors: it is empty \(0 bytes\).*copy it again"),
    ("empty.pt", b"", r"empty.pt: it is empty"),
    ("garbage.safetensors", b"\x89this is not a weights file" * 40, r"garbage.safetensors: it is not a "
                                                                      r"safetensors file"),
    ("garbage.pt", b"PK\x03\x04 truncated zip" * 10, r"garbage.pt: it is truncated or corrupt"),
])
def test_broken_weights_files_name_the_file_and_the_fix(folder, tmp_path, name, content, message):
    (tmp_path / "labels.txt").write_text("\n".join(LABELS))
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, weights=name)


def test_state_dict_without_tensors_is_refused(tmp_path):
    (tmp_path / "labels.txt").write_text("\n".join(LABELS))
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match="holds no tensors"):
        _load(tmp_path, weights="meta.pt")


def test_missing_files_name_the_file_and_the_folder(folder, tmp_path):
    with pytest.raises(verifiers.MissingWeightsError, match=r"'nope.safetensors'.*models/classifiers/.*timm"):
        _load(folder, weights="nope.safetensors")
    with pytest.raises(verifiers.MissingWeightsError, match=r"'nolabels.txt'.*class labels.*models/classifiers/"):
        _load(folder, labels="nolabels.txt")
    with pytest.raises(verifiers.MissingWeightsError, match="model.safetensors"):
        verifiers.load("classifier", tmp_path)


@pytest.mark.parametrize("content, message", [
    ("", "is empty: write one class name per line"),
    ("\n\n", "is empty"),
    ("a\n\nb\n", r"blank lines \(line 2\)"),
])
def test_bad_labels_files(folder, tmp_path, content, message):
    (tmp_path / "bad.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        _load(folder, labels=str(tmp_path / "bad.txt"))


def test_weights_picked_as_labels_file(folder):
    with pytest.raises(ValueError, match="not UTF-8 text.*labels file"):
        _load(folder, labels=str(folder / "tiny.safetensors"))


def test_loader_node_loads_exactly_the_selected_files(comfy, folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    torch.save(_tiny_net(7).state_dict(), other / "other.pt")   # other weights, same architecture
    comfy.folder_paths.add_model_folder_path("classifiers", str(folder))
    comfy.folder_paths.add_model_folder_path("classifiers", str(other))
    node = comfy.node_classes["DiffusionSearchVerifierClassifier"]
    choices = node.INPUT_TYPES()["required"]
    assert {"tiny.safetensors", "tiny.pt", "other.pt"} <= set(choices["weights"][0])
    assert "labels.txt" in choices["labels"][0] and "tiny.safetensors" not in choices["labels"][0]
    images = _images(3)
    rewards = {}
    for weights in ("tiny.pt", "other.pt"):
        graph = {"ver": {"class_type": "DiffusionSearchVerifierClassifier", "inputs": {
                     "weights": weights, "labels": "labels.txt", "architecture": ARCH, "label": "from prompt",
                     "input_size": SIZE, "normalisation": "inception", "device": "cpu", "dtype": "float32",
                     "chunk_size": 4}},
                 "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ver", 0], "key": weights}}}
        comfy.run(graph)
        verifier = comfy.captured[weights]
        assert type(verifier).__name__ == ClassifierVerifier.__name__
        rewards[weights] = verifier.score(images, "a goldfish")
    torch.testing.assert_close(rewards["tiny.pt"], _reference_log_probs(folder, images)[:, 5])
    assert not torch.allclose(rewards["tiny.pt"], rewards["other.pt"])


def test_key_fields_name_the_label_and_preprocessing(folder):
    """What the state key reads of a classifier besides its weights: plain data that follows the label."""
    from_prompt, fixed = _load(folder), _load(folder, label=LABELS[1])
    fields = from_prompt.key_fields()
    assert fields["label"] == "" and fields["label_index"] is None and fields["preprocessing"]["input_size"] == SIZE
    assert fixed.key_fields()["label_index"] == 1 and fixed.key_fields() != fields
    assert fields["classes"][1][0] == LABELS[1]
