"""VLM verifier: reward = weighted mean over questions of log p("Yes" | image, question), VQAScore-style (Lin et al.
2024), from a local transformers VLM folder (models/vlm/<name>/); never downloads; no gradients (paper §3)."""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .base import MissingWeightsError, Verifier
from .checkpoints import WeightsFileError

logger = logging.getLogger(__name__)

SUBFOLDER = "vlm"
HF = "https://huggingface.co"
SOURCE = (f"the model's hub repository, whole folder (e.g. {HF}/Qwen/Qwen2-VL-2B-Instruct or "
          f"{HF}/Qwen/Qwen2.5-VL-3B-Instruct): config.json, *.safetensors, tokenizer and processor files")
# model_type (config.json) -> family; the families the tests build and score (tests/test_verifiers_vlm.py)
TESTED_FAMILIES = {"qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "llava": "LLaVA (1.5)",
                   "idefics3": "Idefics3 (SmolVLM v1)"}
AGGREGATIONS = ("log_prob", "prob")
DEFAULT_QUESTION = "Does this image show {prompt}? Answer Yes or No."
DEFAULT_IMAGE_SIZE = 448   # longest side sent to the VLM: 448 px is 256 vision tokens for Qwen2-VL (28 px per token)
MIN_TRANSFORMERS = (4, 49)
_WEIGHTED = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?|\.\d+)\s*\|\s*(.+)$")


@dataclass(frozen=True)
class Question:
    """One criterion: its text (may hold {prompt}) and its weight in the mean."""

    text: str
    weight: float = 1.0

    def render(self, prompt: str) -> str:
        return self.text.replace("{prompt}", prompt.strip())


def parse_questions(spec: str | list | tuple) -> list[Question]:
    """Questions from text, one per line, each optionally "weight | question"; or from a list of str/(str, weight)."""
    if isinstance(spec, str):
        items = []
        for line in spec.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            found = _WEIGHTED.match(line)
            items.append((found.group(2).strip(), float(found.group(1))) if found else (line.strip(), 1.0))
    else:
        items = [(q, 1.0) if isinstance(q, str) else (q[0], float(q[1])) for q in spec]
    questions = [Question(text, weight) for text, weight in items]
    if not questions:
        raise ValueError("the VLM verifier needs at least one question, e.g. 'Is there a red car?' "
                         "(one per line; '2 | question' weights a line; {prompt} is replaced by the prompt)")
    bad = [q for q in questions if not math.isfinite(q.weight) or q.weight < 0]
    if bad or sum(q.weight for q in questions) <= 0:
        raise ValueError(f"question weights must be >= 0 and not all 0, got "
                         f"{[q.weight for q in questions]}: write '2 | question' for twice the weight")
    return questions


def answer_token_ids(tokenizer, answer: str) -> list[int]:
    """The vocabulary ids that start the answer word as the model would write it ("Yes" and " Yes")."""
    ids = set()
    for variant in (answer, " " + answer):
        encoded = tokenizer.encode(variant, add_special_tokens=False)
        if len(encoded) == 1:
            ids.add(encoded[0])
    if not ids:
        raise ValueError(f"the answer '{answer}' is no single token of this tokenizer (it splits into "
                         f"{tokenizer.tokenize(answer)}): pick a one-token answer such as 'Yes'")
    return sorted(ids)


class VLMVerifier(Verifier):
    """Weighted mean over questions of log p(Yes) ("log_prob") or of p(Yes) ("prob") from a VLM's next token."""

    name = "vlm"
    differentiable = False   # the processor quantises and resizes pixels on the CPU: no gradient reaches the image
    needs_prompt = False

    def __init__(self, model, processor, questions, *, aggregation: str = "log_prob", answer: str = "Yes",
                 image_size: int = DEFAULT_IMAGE_SIZE, chunk_size: int = 4, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if image_size < 0:
            raise ValueError(f"image_size must be >= 0 (0 = as decoded), got {image_size}")
        self.model = model
        self.processor = processor
        self.questions = parse_questions(questions)
        self.needs_prompt = any("{prompt}" in q.text for q in self.questions)
        self.aggregation = aggregation
        self.image_size = int(image_size)
        self.processor.tokenizer.padding_side = "left"   # the next-token logits are then at the last position
        self.answer_ids = answer_token_ids(self.processor.tokenizer, answer)
        self.finish_init()

    def _pixels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """uint8 [3,h,w] CPU images, the longest side resized to image_size (what the processors expect)."""
        if self.image_size and max(images.shape[-2:]) != self.image_size:
            scale = self.image_size / max(images.shape[-2:])
            size = [max(1, round(side * scale)) for side in images.shape[-2:]]
            images = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        pixels = images.float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
        return list(pixels)

    def _texts(self, prompts: list[str]) -> list[str]:
        """The chat-formatted text of every (image, question) pair, image-major."""
        texts = []
        for prompt in prompts:
            for question in self.questions:
                messages = [{"role": "user", "content": [{"type": "image"},
                                                         {"type": "text", "text": question.render(prompt)}]}]
                texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return texts

    def yes_log_probs(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """log p(answer) [b, questions] for images [b,3,H,W] in [0,1], in sub-batches of chunk_size pairs."""
        pixels, texts = self._pixels(images), self._texts(prompts)
        pairs = [(pixels[i // len(self.questions)], text) for i, text in enumerate(texts)]
        out = []
        for start in range(0, len(pairs), self.chunk_size):
            batch = pairs[start:start + self.chunk_size]
            inputs = self.processor(text=[t for _, t in batch], images=[[p] for p, _ in batch], return_tensors="pt",
                                    padding=True)
            inputs = {k: v.to(self.device, dtype=self.dtype) if v.is_floating_point() else v.to(self.device)
                      for k, v in inputs.items() if isinstance(v, torch.Tensor)}
            logits = self.model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1].float()
            out.append(torch.logsumexp(logits.log_softmax(-1)[:, self.answer_ids], dim=-1))
        return torch.cat(out).reshape(len(prompts), len(self.questions))

    def key_fields(self) -> dict:
        """The base fields, the questions and their weights, the aggregation, input size and answer tokens."""
        return {**super().key_fields(), "questions": [(q.text, q.weight) for q in self.questions],
                "aggregation": self.aggregation, "image_size": self.image_size, "answer_ids": list(self.answer_ids)}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        log_p = self.yes_log_probs(images, prompts)
        weights = torch.tensor([q.weight for q in self.questions], device=log_p.device)
        weights = weights / weights.sum()
        if self.aggregation == "log_prob":
            return (log_p * weights).sum(-1)
        return (log_p.exp() * weights).sum(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, questions={len(self.questions)}, aggregation={self.aggregation!r}"


def _version(text: str) -> tuple[int, ...]:
    """(major, minor) of a version string such as 4.49.0 or 5.0.0.dev0."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _missing(filename: str, folder: Path) -> MissingWeightsError:
    return MissingWeightsError(filename, f"{SUBFOLDER}/{folder.name}", SOURCE, looked_in=str(folder / filename))


def check_vlm_folder(folder: str | Path) -> dict:
    """Check a VLM folder holds config, safetensors weights, tokenizer, processor and chat template; its config."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingWeightsError(folder.name, SUBFOLDER, SOURCE, looked_in=str(folder))
    if not (folder / "config.json").is_file():
        error = _missing("config.json", folder)
        # a folder one level too high (models/vlm/ itself, a download's parent, a hub cache's models--*/snapshots/*)
        inner = sorted(str(p.parent.relative_to(folder)) for pattern in ("*/config.json", "*/snapshots/*/config.json")
                       for p in folder.glob(pattern))
        if inner:
            more = f" and {len(inner) - 3} more" if len(inner) > 3 else ""
            error.message += (f" {folder} is the folder above a model: pick the model folder inside it "
                              f"({', '.join(inner[:3])}{more})")
        raise error
    try:
        config = json.loads((folder / "config.json").read_text())
    except ValueError as error:
        raise WeightsFileError(f"cannot use {folder / 'config.json'}: it is not JSON ({error}). Copy the model's "
                               f"config.json again from {SOURCE}") from error
    model_type = config.get("model_type", "?")
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise WeightsFileError(
            f"folder {folder} holds a '{model_type}' model (config.json), not a vision-language model this "
            f"transformers can run: put a VLM folder there (tested: {', '.join(TESTED_FAMILIES.values())}), e.g. "
            f"{HF}/Qwen/Qwen2-VL-2B-Instruct")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        for shard in shards:
            if not (folder / shard).is_file():
                raise _missing(shard, folder)
    elif not (folder / "model.safetensors").is_file():
        other = sorted(p.name for p in folder.glob("*.bin"))
        hint = (f" (found {', '.join(other)}: pickled weights are refused, use the .safetensors release)"
                if other else "")
        error = _missing("model.safetensors", folder)
        error.message += hint
        raise error
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()
            or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())):
        raise _missing("tokenizer.json", folder)
    if not any((folder / name).is_file() for name in ("preprocessor_config.json", "processor_config.json")):
        raise _missing("preprocessor_config.json", folder)
    return config


def _has_chat_template(processor, folder: Path) -> bool:
    if getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None):
        return True
    return any((folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json"))


def load_vlm(folder: str | Path, *, questions: str | list = DEFAULT_QUESTION, aggregation: str = "log_prob",
             answer: str = "Yes", image_size: int = DEFAULT_IMAGE_SIZE, device="cpu", dtype=torch.float32,
             chunk_size: int = 4) -> VLMVerifier:
    """A VLM verifier from a local transformers model folder (config, safetensors, tokenizer, processor)."""
    folder = Path(folder)
    config = check_vlm_folder(folder)
    if config["model_type"] not in TESTED_FAMILIES:
        logger.warning("vlm: model type '%s' loads through transformers' generic image-text-to-text classes but no "
                       "test covers it; tested: %s", config["model_type"], ", ".join(TESTED_FAMILIES.values()))
    import transformers  # lazy: heavy
    from transformers import AutoModelForImageTextToText, AutoProcessor
    version, needed = _version(transformers.__version__), ".".join(map(str, MIN_TRANSFORMERS))
    if version < MIN_TRANSFORMERS:
        raise RuntimeError(f"the VLM verifier needs transformers >= {needed} (Qwen2.5-VL, logits_to_keep); this "
                           f"environment has {transformers.__version__}: run pip install -U 'transformers>={needed}' "
                           "in ComfyUI's Python")
    dtype_keyword = "dtype" if version >= (4, 56) else "torch_dtype"   # renamed in 4.56
    try:
        processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise WeightsFileError(f"cannot read the tokenizer/processor files in {folder}: {error}. Copy the "
                               f"model's tokenizer and processor files again from {SOURCE}") from error
    if not hasattr(processor, "tokenizer") or not _has_chat_template(processor, folder):
        raise _missing("chat_template.jinja", folder)
    try:
        model, info = AutoModelForImageTextToText.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, output_loading_info=True,
            **{dtype_keyword: dtype})
    except (OSError, ValueError, RuntimeError) as error:
        raise WeightsFileError(f"cannot load the VLM weights in {folder}: {error}. Copy the .safetensors files "
                               f"again (compare sizes) from {SOURCE}") from error
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        raise WeightsFileError(
            f"weights in {folder} do not fit its config.json: {len(missing)} tensors are missing (e.g. "
            f"{', '.join(missing[:3])}); these would be random. Copy the whole folder again from {SOURCE}")
    return VLMVerifier(model, processor, questions, aggregation=aggregation, answer=answer, image_size=image_size,
                       chunk_size=chunk_size, device=device, dtype=dtype)
