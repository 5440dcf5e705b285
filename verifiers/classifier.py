"""Image-classifier verifier: reward = log p(label | image) from any timm architecture (paper §4, class-conditional
ImageNet study: "classifier verifiers"). The label comes from a fixed setting or is named in the prompt.

Files: a weights file (state dict, .safetensors / .pt), a labels file (one class per line, in output order; a line
may list synonyms separated by commas, the first is the class's name) and optionally a settings file beside the
weights, `<weights name>.json`: {"architecture", "labels", "input_size", "mean", "std", "model_kwargs"}. Explicit
loader arguments win over that file. timm is imported only when a classifier is loaded.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .base import MissingWeightsError, Verifier
from .checkpoints import load_exact, read_state_dict
from .preprocess import CLIP_MEAN, CLIP_STD, center_crop, normalise, resize_shorter_side

logger = logging.getLogger(__name__)

FOLDER = "classifiers"
FROM_PROMPT = "from prompt"
WHOLE_IMAGE = "whole image"
STRIPS = "strips, left to right"
LAYOUTS = (WHOLE_IMAGE, STRIPS)   # strips: the prompt names one label per vertical strip ("a handwritten 509")
SOURCE = ("timm weights from the Hugging Face hub (e.g. timm/resnet50.a1_in1k: model.safetensors) or your own "
          "training; labels: one class name per line in the model's output order")
NORMALISATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "clip": (CLIP_MEAN, CLIP_STD),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
NORMALISATION_CHOICES = ("auto", *NORMALISATIONS)
LISTED_LABELS = 40  # an error lists at most this many labels (ImageNet has 1,000)


def read_labels(path: str | Path) -> list[list[str]]:
    """Classes as lists of names (first = display name) from a labels file; errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(path.name, FOLDER, SOURCE, looked_in=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"labels file {path} is not UTF-8 text ({error}): it must list one class name per line "
                         "(did you pick the weights file as the labels file?)") from error
    classes = [[name.strip() for name in line.split(",") if name.strip()] for line in text.splitlines()]
    while classes and not classes[-1]:
        classes.pop()
    if not classes:
        raise ValueError(f"labels file {path} is empty: write one class name per line, in the order of the "
                         "classifier's outputs")
    blank = [i + 1 for i, names in enumerate(classes) if not names]
    if blank:
        raise ValueError(f"labels file {path} has blank lines (line {blank[0]}): every line is one class, in the "
                         "order of the classifier's outputs; name every class")
    return classes


def format_labels(classes: list[list[str]]) -> str:
    shown = ", ".join(repr(names[0]) for names in classes[:LISTED_LABELS])
    more = f", ... ({len(classes)} in all)" if len(classes) > LISTED_LABELS else ""
    return shown + more


class LabelResolver:
    """Maps a label setting or a prompt to a class index: exact names, '#index', or names found in the prompt."""

    def __init__(self, classes: list[list[str]], source: str = "the labels file"):
        self.classes = classes
        self.source = source
        self._by_name: dict[str, list[int]] = {}
        for index, names in enumerate(classes):
            for name in {n.lower() for n in names}:
                self._by_name.setdefault(name, []).append(index)
        self._patterns = sorted(((name, re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)"), indices)
                                 for name, indices in self._by_name.items()), key=lambda t: -len(t[0]))
        self._cache: dict[str, int] = {}

    def from_label(self, label: str) -> int:
        """The class a label setting names: a name or synonym (case-insensitive) or '#<index>'."""
        text = label.strip()
        if re.fullmatch(r"#\d+", text):
            index = int(text[1:])
            if index >= len(self.classes):
                raise ValueError(f"label {text}: {self.source} has only {len(self.classes)} classes (#0 to "
                                 f"#{len(self.classes) - 1})")
            return index
        indices = self._by_name.get(text.lower())
        if not indices:
            raise ValueError(f"label {text!r} is not in {self.source}; its labels are: {format_labels(self.classes)}")
        if len(indices) > 1:
            raise ValueError(f"label {text!r} names {len(indices)} classes in {self.source} "
                             f"({', '.join('#' + str(i) for i in indices)}): give the class as '#<index>'")
        return indices[0]

    def sequence(self, text: str) -> list[int]:
        """The classes named in `text`, left to right: names and synonyms as words, and words written with
        one-character names only ("509" with labels 0-9) read character by character."""
        lowered = text.lower()
        taken: list[tuple[int, int]] = []
        hits: list[tuple[int, int]] = []
        for name, pattern, indices in self._patterns:   # longest names first
            for match in pattern.finditer(lowered):
                span = match.span()
                if any(start <= span[0] and span[1] <= end for start, end in taken):
                    continue
                if len(indices) > 1:
                    raise ValueError(f"{name!r} names {len(indices)} classes in {self.source}: give each class one "
                                     "name to read a sequence of labels")
                taken.append(span)
                hits.append((span[0], indices[0]))
        singles = {name: indices[0] for name, indices in self._by_name.items() if len(name) == 1 and len(indices) == 1}
        for match in re.finditer(r"\w{2,}", lowered):
            span = match.span()
            if all(c in singles for c in match.group()) and not any(
                    start <= span[0] and span[1] <= end for start, end in taken):
                hits.extend((span[0] + j, singles[c]) for j, c in enumerate(match.group()))
        if not hits:
            raise ValueError(f"{text!r} names no label of {self.source}; name the labels left to right, one per "
                             f"strip of the image (e.g. 'a handwritten 509'), from {format_labels(self.classes)}")
        return [index for _, index in sorted(hits)]

    def from_prompt(self, prompt: str) -> int:
        """The one class named in the prompt; of overlapping names the longest wins ('tabby cat' over 'cat')."""
        if prompt in self._cache:
            return self._cache[prompt]
        text = prompt.lower()
        taken: list[tuple[int, int]] = []
        found: dict[str, list[int]] = {}
        for name, pattern, indices in self._patterns:   # longest names first
            for match in pattern.finditer(text):
                span = match.span()
                if any(start <= span[0] and span[1] <= end for start, end in taken):
                    continue   # inside a longer name already matched
                taken.append(span)
                found[name] = indices
        classes = sorted({i for indices in found.values() for i in indices})
        if not classes:
            raise ValueError(f"the prompt {prompt!r} names no label of {self.source}; name one of "
                             f"{format_labels(self.classes)} in the prompt, or set the verifier's label")
        if len(classes) > 1:
            names = ", ".join(repr(n) for n in found)
            raise ValueError(f"the prompt {prompt!r} is ambiguous: it names {names} ({len(classes)} classes of "
                             f"{self.source}); name one class, or set the verifier's label")
        self._cache[prompt] = classes[0]
        return classes[0]


@dataclass
class Preprocessing:
    """How images reach the classifier: square input size, channels, normalisation."""

    input_size: int
    mean: tuple
    std: tuple
    in_chans: int = 3

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """NCHW in [0,1] -> the network's input: resize shorter side (antialiased), centre crop, normalise."""
        images = resize_shorter_side(images, self.input_size, mode="bilinear")
        images = center_crop(images, self.input_size)
        if self.in_chans == 1:
            images = images.mean(dim=1, keepdim=True)
        return normalise(images, self.mean, self.std)


class ClassifierVerifier(Verifier):
    """log p(label | image) = log_softmax of a classifier's logits at the label's index."""

    name = "classifier"
    differentiable = True
    needs_prompt = True

    def __init__(self, net: torch.nn.Module, classes: list[list[str]], preprocessing: Preprocessing, *,
                 label: str = "", source: str = "the labels file", chunk_size: int = 32, device="cpu",
                 dtype=torch.float32, layout: str = WHOLE_IMAGE):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: use one of {', '.join(map(repr, LAYOUTS))}")
        self.layout = layout
        if getattr(net, "num_classes", len(classes)) != len(classes):
            raise ValueError(f"the classifier has {net.num_classes} outputs but {source} lists {len(classes)} "
                             "labels: use the labels file made for these weights")
        self.net = net
        self.classes = classes
        self.labels = [names[0] for names in classes]
        self.preprocessing = preprocessing
        self.resolver = LabelResolver(classes, source)
        self.label = "" if label.strip().lower() in ("", FROM_PROMPT) else label.strip()
        self._sequences: dict[str, list[int]] = {}
        if layout == STRIPS:
            self.label_sequence = self.resolver.sequence(self.label) if self.label else None
            self.label_index = None
            self.needs_prompt = self.label_sequence is None
        else:
            self.label_sequence = None
            self.label_index = self.resolver.from_label(self.label) if self.label else None
            self.needs_prompt = self.label_index is None
        self.finish_init()

    def class_index(self, prompt: str) -> int:
        """The rewarded class for one prompt (the fixed label if set)."""
        return self.label_index if self.label_index is not None else self.resolver.from_prompt(prompt)

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """log p(class | image) [b, K] (float32) for images [b,3,H,W] in [0,1] on the verifier's device/dtype."""
        logits = self.net(self.preprocessing(images))
        return torch.log_softmax(logits.float(), dim=-1)

    def key_fields(self) -> dict:
        """The base fields, the labels, the fixed label (if any) and the preprocessing."""
        return {**super().key_fields(), "classes": self.classes, "label": self.label, "label_index": self.label_index,
                "preprocessing": asdict(self.preprocessing), "source": self.resolver.source,
                "layout": self.layout, "label_sequence": self.label_sequence}

    def strip_labels(self, prompt: str) -> list[int]:
        """The rewarded class of each strip, left to right, for one prompt (the fixed label if set)."""
        if self.label_sequence is not None:
            return self.label_sequence
        if prompt not in self._sequences:
            self._sequences[prompt] = self.resolver.sequence(prompt)
        return self._sequences[prompt]

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        if self.layout == STRIPS:
            return self._score_strips(images, prompts)
        index = torch.tensor([self.class_index(p) for p in prompts], device=images.device)
        return self.log_probs(images).gather(1, index[:, None])[:, 0]

    def _score_strips(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """sum_i log p(label_i | strip i): each image cut into as many equal vertical strips as its prompt names
        labels (a per-position classifier for "a handwritten 509"); images with as many labels share one pass."""
        sequences = [self.strip_labels(p) for p in prompts]
        scores = images.new_zeros(len(prompts), dtype=torch.float32)
        for k in sorted({len(q) for q in sequences}):
            rows = [i for i, q in enumerate(sequences) if len(q) == k]
            index = torch.tensor([sequences[i] for i in rows], device=images.device).reshape(-1, 1)
            strip_lp = self.log_probs(split_strips(images[rows], k)).gather(1, index)[:, 0]
            scores = scores.index_put((torch.tensor(rows, device=images.device),), strip_lp.reshape(len(rows), k).sum(1))
        return scores

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """log p(class | image) [B, K] (float32) for a ComfyUI IMAGE batch [B,H,W,3] in [0,1] (a judge's verdicts)."""
        from .base import check_images
        check_images(images)
        pieces = [self.log_probs(chunk.to(self.device, self.dtype).permute(0, 3, 1, 2).clamp(0, 1)).to(images.device)
                  for chunk in images.split(self.chunk_size)]
        return torch.cat(pieces)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, classes={len(self.classes)}, label={self.label or FROM_PROMPT!r}, "
                f"input_size={self.preprocessing.input_size}, layout={self.layout!r}")


def split_strips(images: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * k, C, H, W / k): k equal vertical strips per image, left to right, image by image."""
    b, c, h, w = images.shape
    if w % k:
        raise ValueError(f"an image {w} px wide does not cut into {k} equal strips (one per label the prompt "
                         f"names): make the width a multiple of {k}, e.g. {64 * k} px for {k} labels of 64 px")
    return images.reshape(b, c, h, k, w // k).permute(0, 3, 1, 2, 4).reshape(b * k, c, h, w // k)


# -- loading ----------------------------------------------------------------------------------------------------
def _resolve(folder, path_or_name, what: str) -> Path:
    candidate = Path(path_or_name)
    if not candidate.is_absolute() and folder is not None:
        candidate = Path(folder) / candidate
    if not candidate.is_file():
        raise MissingWeightsError(Path(path_or_name).name, FOLDER, SOURCE, looked_in=f"{candidate} ({what})")
    return candidate


def read_settings(weights: Path) -> dict:
    """The optional `<weights name>.json` beside the weights ({} when absent)."""
    path = weights.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"classifier settings file {path} is not valid JSON ({error}): fix it or delete it and "
                         "set the architecture, labels and input size on the loader") from error
    if not isinstance(settings, dict):
        raise ValueError(f"classifier settings file {path} must hold a JSON object, got {type(settings).__name__}")
    return settings


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from `path` through the shared reader: empty, truncated, foreign or unsafe files get an error
    naming the file, what is wrong and the fix."""
    return read_state_dict(path)


def _key_shape(state: dict, prefix) -> tuple | None:
    if isinstance(prefix, str) and f"{prefix}.weight" in state:
        return tuple(state[f"{prefix}.weight"].shape)
    return None


def build_timm_classifier(architecture: str, state: dict, weights: Path, num_labels: int, labels: Path,
                          model_kwargs: dict | None = None) -> torch.nn.Module:
    """timm model `architecture` (no download) with the weights of `state`; mismatches name file and architecture."""
    import timm  # lazy: heavy, imports torchvision

    if not timm.is_model(architecture):
        close = timm.list_models(f"*{architecture}*")[:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ValueError(f"unknown timm architecture {architecture!r}{hint}: give the architecture the weights "
                         f"{weights.name} were trained with, as timm names it (timm.list_models())")
    probe_cfg = timm.models.get_pretrained_cfg(architecture) if hasattr(timm.models, "get_pretrained_cfg") else None
    probe = getattr(probe_cfg, "to_dict", lambda: {})() if probe_cfg is not None else {}
    kwargs = dict(model_kwargs or {})
    head = _key_shape(state, probe.get("classifier"))
    if head is not None and head[0] != num_labels:
        raise ValueError(f"classifier weights {weights} have {head[0]} classes but labels file {labels} lists "
                         f"{num_labels}: use the labels file made for these weights (timm architecture "
                         f"{architecture!r})")
    first = _key_shape(state, probe.get("first_conv"))
    if first is not None and len(first) == 4 and "in_chans" not in kwargs:
        kwargs["in_chans"] = first[1]
    try:
        net = timm.create_model(architecture, pretrained=False, num_classes=num_labels, **kwargs)
    except Exception as error:
        raise ValueError(f"cannot build timm architecture {architecture!r} with {kwargs}: {error}") from error
    load_exact(net, state, weights, what=f"timm architecture {architecture!r}", allow_unexpected=False,
               fix="Pick the architecture these weights were trained with, or the weights file made for this "
                   "architecture")
    return net


def _input_channels(net: torch.nn.Module, kwargs: dict) -> int:
    first = (getattr(net, "pretrained_cfg", {}) or {}).get("first_conv")
    try:
        weight = net.get_submodule(first).weight if isinstance(first, str) else None
    except AttributeError:
        weight = None
    return int(weight.shape[1]) if weight is not None and weight.dim() == 4 else int(kwargs.get("in_chans", 3))


def _normalisation(choice: str, settings: dict, net, in_chans: int) -> tuple[tuple, tuple]:
    if choice not in NORMALISATION_CHOICES:
        raise ValueError(f"normalisation {choice!r} is not supported: use one of {list(NORMALISATION_CHOICES)}")
    if choice != "auto":
        mean, std = NORMALISATIONS[choice]
    elif "mean" in settings and "std" in settings:
        mean, std = settings["mean"], settings["std"]
    else:
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean", NORMALISATIONS["imagenet"][0]), cfg.get("std", NORMALISATIONS["imagenet"][1])
    mean = tuple(float(m) for m in (mean if isinstance(mean, (list, tuple)) else [mean]))
    std = tuple(float(s) for s in (std if isinstance(std, (list, tuple)) else [std]))
    if in_chans == 1 and len(mean) == 3:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    if len(mean) not in (1, in_chans) or len(std) != len(mean) or min(std) <= 0:
        raise ValueError(f"normalisation mean {mean} / std {std} does not fit a {in_chans}-channel classifier "
                         "(std must be > 0)")
    return mean, std


def load_classifier(folder: str | Path | None = None, *, weights: str | Path = "model.safetensors",
                    architecture: str = "", labels: str | Path = "", label: str = "", input_size: int = 0,
                    normalisation: str = "auto",
                    model_kwargs: dict | None = None, device="cpu", dtype=torch.float32,
                    chunk_size: int = 32, layout: str = WHOLE_IMAGE) -> ClassifierVerifier:
    """A timm classifier from exactly the given weights and labels files (names inside `folder`, or paths)."""
    weights_path = _resolve(folder, weights, "classifier weights")
    settings = read_settings(weights_path)
    architecture = (architecture or "").strip() or settings.get("architecture", "")
    if not architecture:
        raise ValueError(f"which timm architecture are the weights {weights_path.name} for? Set 'architecture' (e.g. "
                         f"resnet50, convnext_tiny) or write it in {weights_path.with_suffix('.json').name} beside "
                         "the weights")
    # labels named by the settings file sit beside the weights; others in `folder` (default: beside the weights)
    base = weights_path.parent if (not labels and settings.get("labels")) or folder is None else folder
    labels_path = _resolve(base, labels or settings.get("labels") or "labels.txt", "class labels")
    classes = read_labels(labels_path)
    state = read_weights(weights_path)
    kwargs = {**settings.get("model_kwargs", {}), **(model_kwargs or {})}
    net = build_timm_classifier(architecture, state, weights_path, len(classes), labels_path, kwargs)
    in_chans = _input_channels(net, kwargs)
    size = int(input_size) or int(settings.get("input_size") or 0)
    if not size:
        size = int((getattr(net, "pretrained_cfg", {}) or {}).get("input_size", (3, 224, 224))[-1])
    if size < 1:
        raise ValueError(f"input_size must be a positive number of pixels, got {size}")
    mean, std = _normalisation(normalisation, settings, net, in_chans)
    preprocessing = Preprocessing(size, mean, std, in_chans)
    verifier = ClassifierVerifier(net, classes, preprocessing, label=label, source=f"labels file {labels_path.name}",
                                  chunk_size=chunk_size, device=device, dtype=dtype, layout=layout)
    logger.info("classifier verifier: %s (%s) with %d classes at %d px", weights_path.name, architecture,
                len(classes), size)
    return verifier
