"""Verifier loader nodes (one per registered verifier) and a node that mixes verifiers with weights."""
from __future__ import annotations

import logging
import os

import importlib

import torch

from ..verifiers import registry
from ..verifiers.base import Verifier
from ..verifiers.composite import CompositeVerifier

log = logging.getLogger(__name__)

VERIFIER_TYPE = "SEARCH_VERIFIER"
CATEGORY = "sampling/custom_sampling/search/verifiers"
WEIGHT_EXTENSIONS = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
NORMALISE_MODES = ("raw", "z-score", "rank")
DTYPE_TOOLTIP = ("Precision of the verifier's weights: float32 is exact and works everywhere; float16 / bfloat16 "
                 "halve its memory on a GPU (bfloat16 needs a recent card).")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _folder_paths():
    return importlib.import_module("folder_paths")


def register_model_folders() -> None:
    """Make models/<subfolder>/ of every verifier known to folder_paths (extra_model_paths.yaml may add more)."""
    try:
        folder_paths = _folder_paths()
    except ImportError:  # imported outside ComfyUI (tests of the plain libraries, scripts): nothing to register
        return
    for spec in registry.available():
        if spec.subfolder and spec.subfolder not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(spec.subfolder, os.path.join(folder_paths.models_dir, spec.subfolder))


def _missing_choice(spec, filename: str | None = None) -> str:
    return f"(missing: put {filename or spec.files[0].filename} in models/{spec.subfolder}/)"


def weight_choices(spec, filename: str | None = None) -> list[str]:
    """Weight files found in the verifier's models folder (subfolders too), or one entry that says what is missing."""
    folder_paths = _folder_paths()
    try:
        files = [f for f in folder_paths.get_filename_list(spec.subfolder) if f.lower().endswith(WEIGHT_EXTENSIONS)]
    except KeyError:
        files = []
    return files or [_missing_choice(spec, filename)]


def _file_widget(index: int, keyword: str) -> str:
    return "weights" if index == 0 else keyword  # the main file keeps the widget name every loader has


def _default_choice(choices: list[str], filename: str) -> str:
    """The entry named like the usual file (in any subfolder), else the first."""
    return next((c for c in choices if os.path.basename(c) == filename), choices[0])


def check_picked_name(spec, widget: str, name) -> None:
    """Refuse placeholders and names that leave the models folder (absolute paths, '..')."""
    if not isinstance(name, str) or not name or name.startswith("(missing"):
        raise ValueError(f"verifier '{spec.name}' needs {', '.join(f.filename for f in spec.files)} in "
                         f"models/{spec.subfolder}/ ({spec.files[0].source}); verifiers never download")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"{widget} '{name}' is not a file inside models/{spec.subfolder}/: pick one from the list "
                         "(paths that leave the models folder are refused)")


def picked_file(spec, widget: str, name) -> str:
    """Full path of the file picked in `widget`; refuses placeholders, paths out of the models folder, and gone files."""
    check_picked_name(spec, widget, name)
    path = _folder_paths().get_full_path(spec.subfolder, name)
    if path is None or not os.path.isfile(path):
        raise ValueError(f"{widget} '{name}' is not in models/{spec.subfolder}/ (any more): put it there, or refresh "
                         "the node list (press R) and pick another file")
    return path


def _device(choice: str) -> torch.device:
    return importlib.import_module("comfy.model_management").get_torch_device() if choice == "auto" else torch.device(choice)


def _class_name(spec_name: str) -> str:
    return "DiffusionSearchVerifier" + "".join(part.capitalize() for part in spec_name.split("_"))


def make_loader_node(spec):
    """Build the classic ComfyUI node class that loads verifier `spec` (files found through folder_paths)."""

    class VerifierLoader:
        SPEC_NAME = spec.name
        DESCRIPTION = spec.description
        RETURN_TYPES = (VERIFIER_TYPE,)
        RETURN_NAMES = ("verifier",)
        OUTPUT_TOOLTIPS = (f"The {spec.name} reward model, for a search sampler's 'verifier' or 'select_verifier', "
                           f"Rank Images or Combine Verifiers.",)
        FUNCTION = "load"
        CATEGORY = CATEGORY

        @classmethod
        def INPUT_TYPES(cls):
            picked = {keyword for keyword, _ in spec.picked_files}
            picked_names = {filename for _, filename in spec.picked_files}
            required = {}
            for index, (keyword, filename) in enumerate(spec.picked_files):
                choices = weight_choices(spec, filename)
                companions = [f.filename for f in spec.files if f.filename not in picked_names]
                required[_file_widget(index, keyword)] = (choices, {
                    "default": _default_choice(choices, filename),
                    "tooltip": f"The {keyword} file to load, from models/{spec.subfolder}/ (usually {filename})"
                               + (f"; {', '.join(companions)} are read from the same folder as the weights."
                                  if companions and index == 0 else ".")})
            for option, default in spec.options.items():
                if option in picked:
                    continue
                if isinstance(default, str):
                    required[option] = ("STRING", {"default": default, "tooltip": f"loader option '{option}'"})
            required["device"] = (["auto", "cpu"], {
                "default": "auto", "tooltip": "auto = ComfyUI's compute device (the GPU when there is one)."})
            required["dtype"] = (list(DTYPES), {"default": "float32", "tooltip": DTYPE_TOOLTIP})
            required["chunk_size"] = ("INT", {
                "default": 8, "min": 1, "max": 256,
                "tooltip": "Images scored per forward pass; lower it if the verifier runs out of memory."})
            return {"required": required}

        def load(self, device, dtype, chunk_size, **inputs):
            picked = {keyword for keyword, _ in spec.picked_files}
            options = {k: v for k, v in inputs.items() if k in spec.options and k not in picked}
            widgets = [(_file_widget(index, keyword), keyword) for index, (keyword, _) in enumerate(spec.picked_files)]
            for widget, _ in widgets:  # every name first: a path out of the models folder is refused as such
                check_picked_name(spec, widget, inputs.get(widget))
            folder = None
            for widget, keyword in widgets:
                options[keyword] = picked_file(spec, widget, inputs.get(widget))
                folder = folder or os.path.dirname(options[keyword])  # companions come from beside the main file
            verifier = registry.load(spec.name, folder, device=_device(device), dtype=DTYPES[dtype], **options)
            verifier.chunk_size = int(chunk_size)
            log.info("loaded verifier %s on %s", spec.name, verifier.device)
            return (verifier,)

    VerifierLoader.__name__ = _class_name(spec.name)
    return VerifierLoader


class DiffusionSearchCombineVerifiers:
    """A weighted sum of up to four verifiers as one verifier (prompt-following + aesthetics, etc.)."""

    DESCRIPTION = ("Weighted sum of verifiers (reward = Σ weight_i · reward_i, optionally z-scored per batch), or a "
                   "weighted mean rank for selection only. Differentiable if all parts are (not in rank mode).")
    RETURN_TYPES = (VERIFIER_TYPE,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("One verifier scoring with all of the connected ones; differentiable (can guide local search) "
                       "when every part is and normalise is not rank.",)
    FUNCTION = "combine"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        weight = ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.05,
                            "tooltip": "Multiplies this verifier's reward; rewards are on each verifier's own scale."})
        optional = {}
        for index in (2, 3, 4):
            optional[f"verifier_{index}"] = (VERIFIER_TYPE, {"tooltip": f"Verifier {index} (optional)."})
            optional[f"weight_{index}"] = weight
        return {
            "required": {"verifier_1": (VERIFIER_TYPE, {"tooltip": "The first verifier (required)."}),
                         "weight_1": weight,
                         "normalise": (list(NORMALISE_MODES), {"default": "raw", "tooltip":
                                       "raw: weights times each verifier's own scale; z-score: standardise each "
                                       "over the scored batch first; rank: weighted mean rank in [0, 1] (no "
                                       "gradients, use as select_verifier)."})},
            "optional": optional,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, weight_1=None, weight_2=None, weight_3=None, weight_4=None):
        from .widgets import validate_floats
        return validate_floats(cls, weight_1=weight_1, weight_2=weight_2, weight_3=weight_3, weight_4=weight_4)

    def combine(self, verifier_1, weight_1, normalise="raw", **optional):
        from .widgets import check_floats
        check_floats(type(self), weight_1=weight_1, **{f"weight_{i}": optional.get(f"weight_{i}") for i in (2, 3, 4)})
        parts = [(verifier_1, weight_1)]
        for index in (2, 3, 4):
            verifier = optional.get(f"verifier_{index}")
            if verifier is not None:
                parts.append((verifier, optional.get(f"weight_{index}", 1.0)))
        for verifier, _ in parts:
            if not isinstance(verifier, Verifier):
                raise TypeError(f"expected a SEARCH_VERIFIER, got {type(verifier).__name__}")
        verifiers, weights = [v for v, _ in parts], [float(w) for _, w in parts]
        if normalise == "raw":  # fixed (mean 0, std 1) stats: the plain weighted sum of raw rewards
            return (CompositeVerifier(verifiers, weights, stats=[(0.0, 1.0)] * len(parts)),)
        if normalise == "z-score":
            return (CompositeVerifier(verifiers, weights),)
        if normalise == "rank":
            return (CompositeVerifier(verifiers, weights, mode="rank"),)
        raise ValueError(f"normalise must be one of {NORMALISE_MODES}, got {normalise!r}")


LABEL_EXTENSIONS = (".txt",)


def _model_dirs(folder: str) -> list[str]:
    try:
        return _folder_paths().get_folder_paths(folder)
    except KeyError:
        return []


def _files_in(folder: str, extensions: tuple[str, ...], missing: str) -> list[str]:
    """Files under models/<folder>/ (every configured path), listed here: ComfyUI registers 'classifiers' for
    extension-less files only, and its registry is not ours to change."""
    found = set()
    for root in _model_dirs(folder):
        for directory, subdirs, files in os.walk(root, followlinks=True):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            found.update(os.path.relpath(os.path.join(directory, f), root).replace(os.sep, "/")
                         for f in files if f.lower().endswith(extensions))
    return sorted(found) or [missing]


def _full_path(folder: str, name: str) -> str | None:
    """The file `name` (relative, no '..') in one of models/<folder>/'s paths, else None."""
    relative = os.path.normpath(name)
    if os.path.isabs(relative) or relative.startswith(".."):
        return None
    for root in _model_dirs(folder):
        path = os.path.join(root, relative)
        if os.path.isfile(path):
            return path
    return None


class DiffusionSearchVerifierClassifier:
    """Any timm image classifier as a verifier: reward = log p(label | image) (paper §4, classifier verifiers)."""

    SPEC_NAME = "classifier"
    DESCRIPTION = ("An image classifier (any timm architecture, weights + labels file from models/classifiers/) as a "
                   "verifier: reward = log p(label | image), the label set here or named in the prompt. "
                   "Differentiable, so it can guide local search.")
    RETURN_TYPES = (VERIFIER_TYPE,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("The classifier as a reward model, for a search sampler's 'verifier' or 'select_verifier', "
                       "Rank Images or Combine Verifiers.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        from ..verifiers.classifier import FROM_PROMPT, LAYOUTS, NORMALISATION_CHOICES
        return {"optional": {
            "layout": (list(LAYOUTS), {"default": LAYOUTS[0], "tooltip":
                       "whole image: one label for the image. strips, left to right: the prompt (or 'label') names "
                       "one label per vertical strip, and the reward is the sum of each strip's log p (a "
                       "per-position classifier: 'a handwritten 509' on a 192 x 64 image = three 64 px strips)."}),
        }, "required": {
            "weights": (_files_in("classifiers", WEIGHT_EXTENSIONS, "(missing: put classifier weights in "
                                                                    "models/classifiers/)"), {
                "tooltip": "The classifier's weights (a state dict, .safetensors or .pt) in models/classifiers/."}),
            "labels": (_files_in("classifiers", LABEL_EXTENSIONS, "(missing: put a labels .txt in "
                                                                  "models/classifiers/)"), {
                "tooltip": "Class names, one per line in the classifier's output order (synonyms after commas)."}),
            "architecture": ("STRING", {"default": "", "tooltip":
                             "The timm architecture of the weights (e.g. resnet50, convnext_tiny, "
                             "vit_base_patch16_224). Empty: read it from <weights name>.json beside the weights."}),
            "label": ("STRING", {"default": FROM_PROMPT, "tooltip":
                      "The rewarded class (a name from the labels file, or #index). 'from prompt' or empty: the "
                      "class named in the search's prompt (e.g. 'a photo of a goldfish' -> goldfish)."}),
            "input_size": ("INT", {"default": 0, "min": 0, "max": 4096, "tooltip":
                           "Pixels the classifier looks at (square). 0: from <weights name>.json, else the "
                           "architecture's timm default (224 for most)."}),
            "normalisation": (list(NORMALISATION_CHOICES), {"default": "auto", "tooltip":
                              "auto: from <weights name>.json, else the architecture's timm mean/std. imagenet, "
                              "inception (0.5), clip, or none (pixels in [0, 1])."}),
            "device": (["auto", "cpu"], {"default": "auto", "tooltip":
                       "auto = ComfyUI's compute device (the GPU when there is one)."}),
            "dtype": (list(DTYPES), {"default": "float32", "tooltip": DTYPE_TOOLTIP}),
            "chunk_size": ("INT", {"default": 32, "min": 1, "max": 1024, "tooltip":
                           "Images scored per forward pass; lower it if the verifier runs out of memory."}),
        }}

    def load(self, weights, labels, architecture, label, input_size, normalisation, device, dtype, chunk_size,
             layout="whole image"):
        for value, what in ((weights, "weights"), (labels, "labels")):
            if value.startswith("(missing"):
                raise ValueError(f"the classifier verifier needs a {what} file in models/classifiers/ "
                                 "(verifiers never download): put it there and refresh the page")
            check_picked_name(registry.REGISTRY[self.SPEC_NAME], what, value)
        weights_path, labels_path = _full_path("classifiers", weights), _full_path("classifiers", labels)
        for path, name in ((weights_path, weights), (labels_path, labels)):
            if path is None:
                raise ValueError(f"'{name}' is not in models/classifiers/ any more: refresh the page and pick again")
        verifier = registry.load("classifier", os.path.dirname(weights_path), device=_device(device),
                                 dtype=DTYPES[dtype], weights=weights_path, labels=labels_path,
                                 architecture=architecture, label=label, input_size=int(input_size),
                                 normalisation=normalisation, chunk_size=int(chunk_size), layout=layout)
        log.info("loaded classifier verifier %s on %s", weights, verifier.device)
        return (verifier,)


CUSTOM_LOADERS = {"classifier": DiffusionSearchVerifierClassifier}


def loader_nodes() -> dict:
    """{node id: class} for every registered verifier, ids like DiffusionSearchVerifierImageReward."""
    register_model_folders()
    from .vlm_node import DiffusionSearchVerifierVlm  # its own file (it imports this one's helpers)
    custom = {**CUSTOM_LOADERS, "vlm": DiffusionSearchVerifierVlm}
    return {_class_name(spec.name): custom.get(spec.name) or make_loader_node(spec) for spec in registry.available()}
