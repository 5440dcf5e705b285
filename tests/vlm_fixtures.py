"""Writers of tiny random-weight VLM folders (config + safetensors + tokenizer + processor), built offline."""
from __future__ import annotations

import json
from pathlib import Path

import torch

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>")
# Qwen2-VL's own chat template, shortened to what the verifier sends: user turns with images and text
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WORDS = ("Yes No yes no Is there a red car ? Does this image show an cat dog blue green photo of the Answer or "
         "with . user assistant tree house sky").split()


def _byte_level_tokenizer(specials: tuple[str, ...]):
    """A byte-level BPE (all 256 bytes + whole-word merges for WORDS), as Qwen's tokenizer is, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    alphabet = list(bytes_to_unicode().values())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    merges = []
    for word in WORDS:
        for piece in (word, "Ġ" + word):  # "Ġ" is the byte-level space
            if piece in vocab or len(piece) < 2:
                continue
            current = piece[0]
            for ch in piece[1:]:
                merged = current + ch
                if merged not in vocab:
                    merges.append((current, ch))
                    vocab[merged] = len(vocab)
                current = merged
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(specials))
    return tokenizer


def write_qwen2_vl_folder(folder: Path, generator: torch.Generator, *, family: str = "qwen2_vl") -> Path:
    """A tiny Qwen2-VL (or Qwen2.5-VL) saved like the hub repos: config.json, model.safetensors, tokenizer.json,
    tokenizer_config.json, preprocessor_config.json, chat_template."""
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen2VLProcessor
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = _byte_level_tokenizer(QWEN_SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    vocab_size = len(tokenizer) + 3  # hub checkpoints pad the embedding beyond the tokenizer too
    text = {"vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "tie_word_embeddings": False,
            "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig as Config, Qwen2VLForConditionalGeneration as Model
        vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}
    else:
        from transformers import Qwen2_5_VLConfig as Config, Qwen2_5_VLForConditionalGeneration as Model
        vision = {"depth": 2, "hidden_size": 32, "out_hidden_size": 64, "intermediate_size": 64, "num_heads": 2,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
                  "window_size": 56, "fullatt_block_indexes": [1]}
    config = Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                    video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                    vision_end_token_id=ids["<|vision_end|>"], eos_token_id=ids["<|im_end|>"],
                    pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False)
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))  # transformers inits from the global RNG
    model = Model(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.05, generator=generator)
        # a loud LM head so that p(Yes) is far from uniform and moves with the image
        model.lm_head.weight.normal_(0.0, 0.3, generator=generator)
    model.save_pretrained(str(folder))
    # 56..112 px images: 4..16 merged vision tokens, cheap on one core
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2,
                                            temporal_patch_size=2)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_CHAT_TEMPLATE)
    processor.save_pretrained(str(folder))
    return folder
