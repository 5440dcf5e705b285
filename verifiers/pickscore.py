"""PickScore (Kirstain et al. 2023): a transformers CLIPModel (ViT-H-14) fine-tuned on Pick-a-Pic."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import Verifier
from .checkpoints import check_state, read_state_dict
from .preprocess import clip_preprocess
from .registry import resolve_file

WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


class PickScoreVerifier(Verifier):
    """logit_scale * cosine(image, prompt) from the CLIP projections (PickScore's own scoring)."""

    name = "pickscore"
    differentiable = True
    needs_prompt = True

    def __init__(self, model, tokenizer, *, chunk_size: int = 4, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.model = model
        self.tokenizer = tokenizer
        vision = model.config.vision_config
        self.image_size = vision.image_size
        self.finish_init()

    def features(self, pixels: torch.Tensor, input_ids: torch.Tensor):
        """Projected image and text embeddings (pooled output -> projection), as CLIPModel computes them."""
        image = self.model.visual_projection(self.model.vision_model(pixel_values=pixels).pooler_output)
        text = self.model.text_projection(self.model.text_model(input_ids=input_ids).pooler_output)
        return image, text

    def key_fields(self) -> dict:
        """The base fields and the input size."""
        return {**super().key_fields(), "image_size": self.image_size}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_preprocess(images, self.image_size)
        # CLIP BPE, 77 tokens, truncated; the causal text model pools at the end token, so padding is inert
        input_ids = self.tokenizer(prompts).to(self.device)
        image, text = self.features(pixels, input_ids)
        cosine = (F.normalize(image, dim=-1) * F.normalize(text, dim=-1)).sum(-1)
        return self.model.logit_scale.exp() * cosine


def load_pickscore(folder: str | Path | None = None, *, weights: str | Path | None = None, device="cpu",
                   dtype=torch.float32, chunk_size: int = 4) -> PickScoreVerifier:
    """PickScore_v1 from its weights file (model.safetensors / pytorch_model.bin) and the config.json beside it."""
    if weights is not None:
        weights_path = resolve_file(folder, weights, "pickscore", "model.safetensors")
        folder = weights_path.parent
    config_path = resolve_file(folder, "config.json", "pickscore", "config.json")
    if weights is None:
        found = [Path(folder) / name for name in WEIGHT_NAMES if (Path(folder) / name).is_file()]
        weights_path = found[0] if found else resolve_file(folder, "model.safetensors", "pickscore")  # raises
    state = read_state_dict(weights_path)  # first: a bad file is named before the model is built
    import open_clip  # lazy; its CLIP BPE tokenizer ships in the wheel (the same vocabulary PickScore uses)
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig.from_json_file(str(config_path))
    with torch.device("meta"):  # shapes only, to check the file before transformers loads it
        expected = {k: tuple(v.shape) for k, v in CLIPModel(config).state_dict().items()}
    check_state(expected, state, weights_path, what=f"PickScore (a transformers CLIPModel) with {config_path}",
                fix="Pick PickScore_v1's model.safetensors with the config.json from the same repository beside it")
    model = CLIPModel.from_pretrained(None, config=config, state_dict=state, dtype=torch.float32)
    context = model.config.text_config.max_position_embeddings
    tokenizer = open_clip.tokenize if context == 77 else (lambda texts: open_clip.tokenize(texts, context_length=context))
    return PickScoreVerifier(model, tokenizer, chunk_size=chunk_size, device=device, dtype=dtype)
