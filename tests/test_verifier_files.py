"""Bad weight files through every loader: each error names the file and what is wrong; no pickle ever runs code."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import verifiers
from verifier_fixtures import TINY_OPEN_CLIP, med_config, write_aesthetic_head, write_tiny_vocab
from verifiers.checkpoints import WeightsFileError, read_state_dict

MARKER_NAME = "pickle_ran_code.txt"


class CodeRunningPickle:
    """Unpickling this runs code (writes a marker file): what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _open_clip_config(folder: Path) -> None:
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}))


def _pickscore_config(folder: Path) -> None:
    from transformers import CLIPConfig
    CLIPConfig(text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                            "num_attention_heads": 2, "max_position_embeddings": 77},
               vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
               projection_dim=16).to_json_file(str(folder / "config.json"))


def _image_reward_companions(folder: Path) -> None:
    write_tiny_vocab(folder / "vocab.txt")
    (folder / "med_config.json").write_text(json.dumps(med_config(64)))


def _aesthetic_for_clip(folder: Path) -> None:
    _open_clip_config(folder)
    write_aesthetic_head(folder / "head.pth", torch.Generator().manual_seed(0))


def _classifier_companions(folder: Path) -> None:
    (folder / "labels.txt").write_text("zero\none\n")
    (folder / "model.json").write_text(json.dumps({"architecture": "test_convnext"}))


# loader name, the file the user picks, the loader keyword it goes to, companions written beside it
LOADERS = {
    "face": ("onet.pt", "weights", None),
    "image_reward": ("ImageReward.pt", "checkpoint", _image_reward_companions),
    "pickscore.bin": ("pytorch_model.bin", "weights", _pickscore_config),
    "pickscore.safetensors": ("model.safetensors", "weights", _pickscore_config),
    "clip_score": ("open_clip_pytorch_model.bin", "weights", _open_clip_config),
    "clip_score.safetensors": ("open_clip_model.safetensors", "weights", _open_clip_config),
    "hpsv2": ("HPS_v2.1_compressed.pt", "weights", _open_clip_config),
    "aesthetic.head": ("head.pth", "head", None),
    "aesthetic.clip": ("open_clip_pytorch_model.bin", "weights", _aesthetic_for_clip),
    "classifier": ("model.pt", "weights", _classifier_companions),
}


def _load(case: str, folder: Path, picked: Path):
    name = case.split(".")[0]
    _, keyword, _ = LOADERS[case]
    options = {keyword: str(picked)}
    if case == "aesthetic.head":  # the CLIP weights are never reached: the head is checked first
        (folder / "clip.bin").write_bytes(b"unused")
        options["weights"] = str(folder / "clip.bin")
    if case == "aesthetic.clip":
        options["head"] = str(folder / "head.pth")
    return verifiers.load(name, folder, **options)


def _valid_bytes(suffix: str, folder: Path) -> bytes:
    """A well-formed weights file of this kind (tensors of no verifier's architecture)."""
    path = folder / f"valid{suffix}"
    state = {"some_other_model.weight": torch.randn(64, 64, generator=torch.Generator().manual_seed(1))}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    return path.read_bytes()


def _write_bad(kind: str, path: Path, folder: Path) -> str:
    """Write a bad file of `kind` at `path`; returns the words its error must contain."""
    if kind == "empty":
        path.write_bytes(b"")
        return "empty"
    if kind == "truncated":
        data = _valid_bytes(path.suffix, folder)
        path.write_bytes(data[: len(data) // 2])
        return "truncated"
    if kind == "garbage":
        path.write_bytes(b"<html>404: this is a web page, not weights</html>\n" * 40)
        return "not a (weights|safetensors) file"
    if kind == "unsafe_pickle":
        torch.save({"weight": CodeRunningPickle(folder / MARKER_NAME)}, path)
        return r"refused.*nothing in it was run"
    if kind == "wrong_architecture":
        path.write_bytes(_valid_bytes(path.suffix, folder))
        return r"does not fit .*missing.*Pick"
    raise AssertionError(kind)


KINDS = ("empty", "truncated", "garbage", "unsafe_pickle", "wrong_architecture")


# Every loader with every kind of bad file, except a pickle in a .safetensors file (a safetensors file holds none).
BAD_FILES = [(case, kind) for kind in KINDS for case in LOADERS
             if not (kind == "unsafe_pickle" and LOADERS[case][0].endswith(".safetensors"))]


@pytest.mark.parametrize("case, kind", BAD_FILES)
def test_bad_weights_file_error_names_the_file_and_the_problem(tmp_path, case, kind):
    filename, _, companions = LOADERS[case]
    if companions is not None:
        companions(tmp_path)
    picked = tmp_path / filename
    words = _write_bad(kind, picked, tmp_path)
    with pytest.raises(WeightsFileError, match=words) as info:
        _load(case, tmp_path, picked)
    assert str(picked) in str(info.value)
    assert not (tmp_path / MARKER_NAME).exists(), "unpickling ran the file's code"


def test_legacy_pickle_that_runs_code_is_refused_without_running(tmp_path):
    import pickle
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"weight": CodeRunningPickle(tmp_path / MARKER_NAME)}, protocol=2))
    with pytest.raises(WeightsFileError, match=r"exec.*refused"):
        read_state_dict(path)
    assert not (tmp_path / MARKER_NAME).exists()


def test_readable_wrapped_state_dicts_still_load(tmp_path):
    state = {"a": torch.ones(2)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "w.pt")
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("w.pt", "w.safetensors"):
        assert torch.equal(read_state_dict(tmp_path / name)["a"], state["a"])
