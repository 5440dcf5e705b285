"""The digits world as ComfyUI graph pieces (API format) for the in-process harness: loaders, conditioning, the guide
and selecting classifiers, every search method of the experiment, decode and capture. The judge never enters a graph:
`Judge` scores the captured images in Python.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "world.json"
CONDITIONING_NODE = "DiffusionSearchDigitsConditioning"
PROMPT_TEMPLATE = "a handwritten {}"
SELECT_SIZE = 56   # the guide at 56 px selects in dual verifiers when the world ships no third classifier
# (held-out digits: 99.4 % at its 64 px, 95.3 % at 56, 30 % at 32: a competent but different view)


@dataclass
class Classifier:
    """One classifier of the world: files in the world's folder and how it looks at images."""

    weights: str
    labels: str
    architecture: str
    input_size: int = 0
    normalisation: str = "auto"
    role: str = "guide"
    layout: str = "whole image"    # "strips, left to right": one label per strip (the numbers world)
    home: Path | None = None       # the weights' folder, where it is not the world's classifiers folder

    def loader_node(self, label: str = "from prompt", chunk_size: int = 256) -> dict:
        return {"class_type": "DiffusionSearchVerifierClassifier", "inputs": {
            "weights": self.weights, "labels": self.labels, "architecture": self.architecture, "label": label,
            "input_size": int(self.input_size), "normalisation": self.normalisation, "device": "auto",
            "dtype": "float32", "chunk_size": chunk_size, "layout": self.layout}}

    def load(self, folder: Path, device="cpu"):
        import verifiers
        weights = str(self.home / self.weights) if self.home else self.weights
        return verifiers.load("classifier", folder, weights=weights, labels=self.labels,
                              architecture=self.architecture, input_size=int(self.input_size),
                              normalisation=self.normalisation, device=device, chunk_size=256,
                              layout=self.layout)


def _test_conditioning(text: str) -> dict:
    import zlib
    return {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": zlib.crc32(text.encode()) % 2**31,
                                                                         "text": text}}


def _digits_conditioning(text: str) -> dict:
    return {"class_type": CONDITIONING_NODE, "inputs": {"text": text}}


@dataclass
class World:
    """Where a world's files are and which nodes load it (the digits world, or a tiny stand-in for tests)."""

    folder: Path
    unet: str
    vae: str
    labels: list[str]
    guide: Classifier
    judge: Classifier
    select: Classifier | None = None
    conditioning: Callable[[str], dict] = _digits_conditioning
    name: str = "digits"
    notes: dict = field(default_factory=dict)
    folders: dict = field(default_factory=dict)   # kind -> folder, where files are not all in `folder`
    more_folders: dict = field(default_factory=dict)   # kind -> a second folder of that kind (registered too)
    scorer: Callable | None = None   # (images, label, guide, judge) -> figures; None: one class per image
    strip_width: int = 0   # > 0: a label of k characters is drawn on k strips this many px wide (numbers world)

    def canvas_width(self, label: str) -> int:
        """Image width for a label: 64 px, or one strip per character (the numbers world: 192 px for "509")."""
        return self.strip_width * len(label) if self.strip_width else 64

    def prompt(self, label: str) -> str:
        return PROMPT_TEMPLATE.format(label)

    def folder_for(self, kind: str) -> Path:
        return Path(self.folders.get(kind, self.folder))

    def model_folders(self) -> dict:
        """ComfyUI model folders to register: the world's unet, vae and classifiers."""
        return {kind: self.folder_for(kind) for kind in ("unet", "vae", "classifiers")}

    def base_graph(self, prompt: str, batch: int, steps: int, width: int = 64) -> dict:
        """Loaders, conditioning (prompt / empty negative), an empty 64 px high latent batch, the schedule, the
        guide."""
        return {
            "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": self.unet, "weight_dtype": "default"}},
            "vae": {"class_type": "VAELoader", "inputs": {"vae_name": self.vae}},
            "pos": self.conditioning(prompt),
            "neg": self.conditioning(""),
            "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": 64, "batch_size": batch}},
            "sched": {"class_type": "BasicScheduler", "inputs": {"model": ["unet", 0], "scheduler": "normal",
                                                                 "steps": steps, "denoise": 1.0}},
            "guide": self.guide.loader_node(),
        }


def register_folders(runtime, world: World):
    """Make the world's model folders known to a running ComfyUI (one booted earlier in this process keeps its own)."""
    for kind, folder in [*world.model_folders().items(), *world.more_folders.items()]:
        if str(folder) not in runtime.folder_paths.get_folder_paths(kind):
            runtime.folder_paths.add_model_folder_path(kind, str(folder))
    return runtime


def construct_vae(folder: Path, manifest: dict) -> Path:
    """The world's VAE file, written on first use when the manifest says it is constructed (exact weights written in
    code, nothing trained: worlds/digits/vae.py), so it needs no room in git; a trained VAE must already be there."""
    entry = manifest["vae"]
    path = folder / entry["file"]
    if path.is_file() or not str(entry.get("made", "")).startswith("constructed"):
        return path
    from worlds.digits.build import build_vae

    try:
        with tempfile.TemporaryDirectory(dir=folder) as scratch:   # processes reading the world at once: no clash
            build_vae(Path(scratch))
            os.replace(Path(scratch) / entry["file"], path)
        os.chmod(path, 0o644)               # readable like the committed files (the writer makes it private)
    except OSError as error:
        raise OSError(f"cannot write the digits world's VAE to {path} ({error}): run "
                      f"`python -m worlds.digits build --stage vae --out <a writable folder>`, or copy the world "
                      "folder somewhere writable") from error
    return path


def read_world(folder: Path = WEIGHTS_DIR, select_size: int = SELECT_SIZE) -> World:
    """The digits world from its manifest (`python -m worlds.digits build` writes both). The selecting verifier
    of dual verifiers is a third classifier if the world ships one ("select"), else the guide at another input size
    (a low-pass view of the same digits): never the judge."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {folder}: build the world with `python -m worlds.digits build`")
    manifest = json.loads(path.read_text())
    classifiers = manifest.get("classifiers") or {}
    labels_file = manifest.get("labels_file", "digits_labels.txt")

    def classifier(role: str) -> Classifier | None:
        entry = classifiers.get(role)
        if entry is None:
            return None
        size = entry.get("input_size", 0)
        return Classifier(weights=entry["file"], labels=entry.get("labels", labels_file),
                          architecture=entry.get("arch") or entry["architecture"],
                          input_size=int(size[-1] if isinstance(size, (list, tuple)) else size), role=role)

    guide, judge = classifier("guide"), classifier("judge")
    if guide is None or judge is None:
        raise ValueError(f"{path} lists no guide and judge classifiers: rebuild the world")
    select = classifier("select") or Classifier(guide.weights, guide.labels, guide.architecture, select_size,
                                                guide.normalisation, role="select")
    labels = [line.strip() for line in (Path(folder) / labels_file).read_text().splitlines() if line.strip()]
    construct_vae(Path(folder), manifest)
    return World(Path(folder), manifest["unet"]["file"], manifest["vae"]["file"], labels, guide, judge,
                 select=select, notes={k: manifest.get(k) for k in ("world", "seed", "split")})


def tiny_world(folder: Path, seed: int = 0) -> World:
    """A stand-in with the world's shapes and formats: random tiny UNet and TAESD, test conditioning, two random
    timm classifiers (labels 0-9). Its images are noise; it exercises the code paths, not the results."""
    import timm
    from safetensors.torch import save_file

    from devtools.tiny_models import write_tiny_models

    folder = Path(folder)
    names = write_tiny_models(folder)
    labels = [str(d) for d in range(10)]
    (folder / "classifiers").mkdir(exist_ok=True)
    # names unique to the stand-in: ComfyUI resolves a name to the first models path that holds it
    (folder / "classifiers" / "tiny_world_labels.txt").write_text("\n".join(labels) + "\n")
    classifiers = []
    for index, role in enumerate(("guide", "judge", "select")):
        torch.manual_seed(seed + index)  # timm initialises from the global generator
        net = timm.create_model("test_resnet", pretrained=False, num_classes=10)
        with torch.no_grad():
            net.fc.weight.mul_(20.0)  # spread the logits so the rewards differ between images
        save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                  str(folder / "classifiers" / f"tiny_{role}.safetensors"))
        classifiers.append(Classifier(f"tiny_{role}.safetensors", "tiny_world_labels.txt", "test_resnet",
                                      16 + 8 * index, "inception", role))
    return World(folder, names["unet"], names["vae"], labels, *classifiers, conditioning=_test_conditioning,
                  name="tiny stand-in", folders={kind: folder / kind for kind in ("unet", "vae", "classifiers")})
