"""Catalogue of verifiers: loader, files, models subfolder; imports nothing heavy until a loader runs."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


@dataclass(frozen=True)
class WeightFile:
    """One file a verifier needs: its usual name, what it is, where to get it."""

    filename: str
    description: str
    source: str
    optional: bool = False


@dataclass(frozen=True)
class VerifierSpec:
    """Registry entry; `loader` is "module:function" inside this package, imported lazily."""

    name: str
    loader: str
    description: str
    subfolder: str | None = None
    files: tuple[WeightFile, ...] = ()
    differentiable: bool = True
    needs_prompt: bool = False
    options: dict = field(default_factory=dict)   # loader keyword options and their defaults, for node widgets
    # (loader keyword, usual file name) of each file the user picks in the node; the first is the main weights file,
    # whose folder also holds the companion files (configs, vocabularies)
    picked_files: tuple[tuple[str, str], ...] = ()

    def load_function(self) -> Callable:
        module_name, function_name = self.loader.split(":")
        module = importlib.import_module(f".{module_name}", __package__)
        return getattr(module, function_name)


HF = "https://huggingface.co"
REGISTRY: dict[str, VerifierSpec] = {spec.name: spec for spec in (
    VerifierSpec(
        "colourfulness", "simple:load_colourfulness",
        "Hasler & Suesstrunk colourfulness; no weights (demos, tests).",
    ),
    VerifierSpec(
        "prompt_colour", "simple:load_prompt_colour",
        "Closeness of pixels to the colours named in the prompt; no weights (demos, tests).", needs_prompt=True,
    ),
    VerifierSpec(
        "image_reward", "image_reward:load_image_reward",
        "ImageReward (BLIP ViT-L/16 + BERT cross-attention + MLP), standardised human-preference reward.",
        subfolder="image_reward", needs_prompt=True, picked_files=(("checkpoint", "ImageReward.pt"),),
        files=(
            WeightFile("ImageReward.pt", "official ImageReward checkpoint", f"{HF}/THUDM/ImageReward/blob/main/ImageReward.pt"),
            WeightFile("med_config.json", "BLIP text-encoder config", f"{HF}/THUDM/ImageReward/blob/main/med_config.json"),
            WeightFile("vocab.txt", "BERT base uncased WordPiece vocabulary",
                       f"{HF}/google-bert/bert-base-uncased/blob/main/vocab.txt"),
        ),
    ),
    VerifierSpec(
        "clip_score", "clip_score:load_clip_score",
        "CLIP score: logit_scale * cosine(image, prompt) with any open_clip architecture.",
        subfolder="open_clip", needs_prompt=True,
        files=(WeightFile("open_clip_pytorch_model.bin", "open_clip weights (.bin/.safetensors/.pt) for `model_name`",
                          f"{HF}/timm/vit_base_patch32_clip_224.openai (or any open_clip repo on the hub)"),),
        options={"model_name": "ViT-B-32-quickgelu", "weights": "open_clip_pytorch_model.bin"},
        picked_files=(("weights", "open_clip_pytorch_model.bin"),),
    ),
    VerifierSpec(
        "aesthetic", "aesthetic:load_aesthetic",
        "LAION aesthetic predictor v2: MLP on L2-normalised CLIP ViT-L/14 (OpenAI) image embeddings.",
        subfolder="aesthetic",
        files=(
            WeightFile("sac+logos+ava1-l14-linearMSE.pth", "aesthetic MLP head",
                       "https://github.com/christophschuhmann/improved-aesthetic-predictor"),
            WeightFile("open_clip_pytorch_model.bin", "CLIP ViT-L/14 OpenAI weights in open_clip format",
                       f"{HF}/timm/vit_large_patch14_clip_224.openai"),
        ),
        options={"model_name": "ViT-L-14-quickgelu", "head": "sac+logos+ava1-l14-linearMSE.pth",
                 "weights": "open_clip_pytorch_model.bin"},
        picked_files=(("weights", "open_clip_pytorch_model.bin"), ("head", "sac+logos+ava1-l14-linearMSE.pth")),
    ),
    VerifierSpec(
        "hpsv2", "clip_score:load_hpsv2",
        "HPSv2 / v2.1: open_clip ViT-H-14 fine-tuned on human preferences; cosine(image, prompt).",
        subfolder="hpsv2", needs_prompt=True,
        files=(WeightFile("HPS_v2.1_compressed.pt", "HPSv2.1 checkpoint (HPS_v2_compressed.pt also works)",
                          f"{HF}/xswu/HPSv2/tree/main"),),
        options={"model_name": "ViT-H-14", "weights": "HPS_v2.1_compressed.pt"},
        picked_files=(("weights", "HPS_v2.1_compressed.pt"),),
    ),
    VerifierSpec(
        "pickscore", "pickscore:load_pickscore",
        "PickScore: transformers CLIPModel (ViT-H-14) fine-tuned on Pick-a-Pic; logit_scale * cosine.",
        subfolder="pickscore", needs_prompt=True, picked_files=(("weights", "model.safetensors"),),
        files=(
            WeightFile("config.json", "transformers CLIP config", f"{HF}/yuvalkirstain/PickScore_v1/tree/main"),
            WeightFile("model.safetensors", "PickScore weights (or pytorch_model.bin)",
                       f"{HF}/yuvalkirstain/PickScore_v1/tree/main"),
        ),
    ),
    VerifierSpec(
        "classifier", "classifier:load_classifier",
        "Image classifier (any timm architecture): log p(label | image); the label is set or named in the prompt.",
        subfolder="classifiers", needs_prompt=True,
        files=(
            WeightFile("model.safetensors", "timm classifier weights (any name; .safetensors / .pt / .pth / .bin)",
                       f"{HF}/timm (e.g. timm/resnet50.a1_in1k: model.safetensors) or your own training"),
            WeightFile("labels.txt", "class names, one per line in the classifier's output order",
                       "the model's card (ImageNet: imagenet_classes.txt); the digits world ships digits_labels.txt"),
        ),
        options={"architecture": "", "weights": "model.safetensors", "labels": "labels.txt", "label": "",
                 "input_size": 0, "normalisation": "auto"},
    ),
    VerifierSpec(
        "vlm", "vlm:load_vlm",
        "A vision-language model asked questions about the image: weighted mean of log p(Yes) (VQAScore-style); "
        "no gradients (selection and BFS/DFS only).",
        subfolder="vlm", differentiable=False,
        files=(
            WeightFile("config.json", "the VLM's folder: config.json, *.safetensors, tokenizer and processor files, "
                       "chat template", f"{HF}/Qwen/Qwen2-VL-2B-Instruct or {HF}/Qwen/Qwen2.5-VL-3B-Instruct "
                       "(the whole repository folder)"),
        ),
        options={"questions": "Does this image show {prompt}? Answer Yes or No.", "aggregation": "log_prob",
                 "answer": "Yes", "image_size": 448},
    ),
    VerifierSpec(
        "face", "face:load_face",
        "MTCNN ONet face probability (facenet-pytorch's pretrained onet.pt); a prompt-free test reward.",
        subfolder="facenet", picked_files=(("weights", "onet.pt"),),
        files=(WeightFile("onet.pt", "MTCNN ONet weights", "the facenet-pytorch package: facenet_pytorch/data/onet.pt"),),
    ),
)}


def available() -> list[VerifierSpec]:
    """Every registered verifier, in registration order."""
    return list(REGISTRY.values())


def load(name: str, folder: str | Path | None = None, *, device: torch.device | str = "cpu",
         dtype: torch.dtype = torch.float32, **options):
    """Build verifier `name` from files in `folder` (its models subfolder); never downloads."""
    if name not in REGISTRY:
        raise KeyError(f"unknown verifier '{name}': choose one of {', '.join(REGISTRY)}")
    spec = REGISTRY[name]
    loader = spec.load_function()
    if spec.files:
        if folder is None and not options:
            raise ValueError(f"verifier '{name}' needs files ({', '.join(f.filename for f in spec.files)}): "
                             f"pass the folder that holds them (ComfyUI: models/{spec.subfolder}/)")
        return loader(folder, device=device, dtype=dtype, **options)
    return loader(device=device, dtype=dtype, **options)


def resolve_file(folder: str | Path | None, path_or_name: str | Path, spec_name: str, filename: str | None = None) -> Path:
    """Find a file given as a path or a name inside `folder`; raise MissingWeightsError naming where it belongs."""
    from .base import MissingWeightsError
    spec = REGISTRY[spec_name]
    candidate = Path(path_or_name)
    if not candidate.is_absolute() and folder is not None:
        candidate = Path(folder) / candidate
    if candidate.is_file():
        return candidate
    wanted = filename or Path(path_or_name).name
    source = next((f.source for f in spec.files if f.filename == wanted), spec.files[0].source if spec.files else "?")
    raise MissingWeightsError(Path(path_or_name).name, spec.subfolder or spec_name, source, looked_in=str(candidate))
