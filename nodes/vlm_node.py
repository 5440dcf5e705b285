"""Load Verifier: VLM, a local vision-language model folder (models/vlm/<name>/) asked questions about the image."""
from __future__ import annotations

import logging
import os

from ..verifiers import registry
from .verifier_nodes import CATEGORY, DTYPE_TOOLTIP, DTYPES, VERIFIER_TYPE, _device, _folder_paths, check_picked_name

log = logging.getLogger(__name__)

SUBFOLDER = "vlm"
MISSING = "(missing: put a VLM folder, e.g. Qwen2-VL-2B-Instruct/, in models/vlm/)"


def _roots() -> list[str]:
    try:
        return _folder_paths().get_folder_paths(SUBFOLDER)
    except KeyError:
        return []


def model_folders() -> list[str]:
    """Folders under models/vlm/ (every configured path) that hold a config.json, as relative names."""
    found = set()
    for root in _roots():
        for directory, subdirs, files in os.walk(root, followlinks=True):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            if "config.json" in files and directory != root:
                found.add(os.path.relpath(directory, root).replace(os.sep, "/"))
                subdirs[:] = []  # a model folder's subfolders are its own business
    return sorted(found) or [MISSING]


def full_folder(name: str) -> str:
    """The picked folder's path in one of models/vlm/'s paths (checked like every file widget)."""
    spec = registry.REGISTRY["vlm"]
    if not isinstance(name, str) or not name or name.startswith("(missing"):
        raise ValueError(f"the VLM verifier needs a model folder in models/{SUBFOLDER}/ ({spec.files[0].source}); "
                         "verifiers never download: put the folder there and refresh the page (press R)")
    check_picked_name(spec, "model", name)
    for root in _roots():
        path = os.path.join(root, os.path.normpath(name))
        if os.path.isdir(path):
            return path
    raise ValueError(f"model '{name}' is not in models/{SUBFOLDER}/ (any more): put it there, or refresh the node list "
                     "(press R) and pick another folder")


class DiffusionSearchVerifierVlm:
    """A VLM as a verifier: reward = weighted mean over questions of log p(Yes) (VQAScore-style, paper §3)."""

    SPEC_NAME = "vlm"
    DISPLAY_NAME = "Load Verifier: VLM"
    DESCRIPTION = ("Ask a vision-language model (a local transformers folder in models/vlm/, e.g. Qwen2-VL-2B) "
                   "yes/no questions about each image; reward = weighted mean of log p(Yes) (or of p(Yes)). No "
                   "gradients: it selects and guides BFS / DFS / Best-of-N, and cannot guide local search.")
    RETURN_TYPES = (VERIFIER_TYPE,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("The VLM as a reward model, for a search sampler's 'verifier' or 'select_verifier', Rank Images "
                       "or Combine Verifiers (not differentiable: local search refuses it as its guide).",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        from ..verifiers.vlm import AGGREGATIONS, DEFAULT_IMAGE_SIZE, DEFAULT_QUESTION
        folders = model_folders()
        return {"required": {
            "model": (folders, {"default": folders[0], "tooltip":
                      "A model folder in models/vlm/ (config.json, *.safetensors, tokenizer and processor files, as "
                      "on the hub). Tested: Qwen2-VL, Qwen2.5-VL, LLaVA 1.5, Idefics3 (SmolVLM v1)."}),
            "questions": ("STRING", {"default": DEFAULT_QUESTION, "multiline": True, "tooltip":
                          "Yes/no questions, one per line; '2 | question' gives a line weight 2; {prompt} is replaced "
                          "by the search's prompt. Ending with 'Answer Yes or No.' helps small models."}),
            "aggregation": (list(AGGREGATIONS), {"default": "log_prob", "tooltip":
                            "log_prob: weighted mean of log p(Yes) (all criteria must hold; the search's λ then "
                            "tempers p(Yes)^λ). prob: weighted mean of p(Yes) in [0, 1] (one strong criterion can "
                            "carry a weak one)."}),
            "image_size": ("INT", {"default": DEFAULT_IMAGE_SIZE, "min": 0, "max": 2048, "step": 8, "tooltip":
                           "Longest side (pixels) the VLM sees; vision tokens grow with its square (Qwen2-VL: 448 "
                           "px = 256 tokens). 0 = the decoded size."}),
            "device": (["auto", "cpu"], {"default": "auto", "tooltip":
                       "auto = ComfyUI's compute device (the GPU when there is one)."}),
            "dtype": (list(DTYPES), {"default": "bfloat16", "tooltip": DTYPE_TOOLTIP + " VLMs are trained in "
                                     "bfloat16; on a CPU use float32."}),
            "chunk_size": ("INT", {"default": 4, "min": 1, "max": 256, "tooltip":
                           "Image-question pairs per forward pass; lower it if the VLM runs out of memory."}),
        }}

    def load(self, model, questions, aggregation, image_size, device, dtype, chunk_size):
        folder = full_folder(model)
        verifier = registry.load("vlm", folder, device=_device(device), dtype=DTYPES[dtype], questions=questions,
                                 aggregation=aggregation, image_size=int(image_size), chunk_size=int(chunk_size))
        log.info("loaded VLM verifier %s (%d questions) on %s", model, len(verifier.questions), verifier.device)
        return (verifier,)
