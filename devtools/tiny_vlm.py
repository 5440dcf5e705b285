"""Random-weight Qwen2-VL / Qwen2.5-VL models with a tiny offline tokenizer and a real processor: tiny ones saved as
model folders for the tests, full-size ones (2B / 3B configs) in memory for the GPU check."""
from __future__ import annotations

import contextlib
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


# sizes: (text config, Qwen2-VL vision config, Qwen2.5-VL vision config); "full" is Qwen2-VL-2B / Qwen2.5-VL-3B's shape
TINY_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}
FULL_TEXT = {"qwen2_vl": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                          "num_attention_heads": 12, "num_key_value_heads": 2,
                          "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}},
             "qwen2_5_vl": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                            "num_attention_heads": 16, "num_key_value_heads": 2,
                            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}}
VISION = {("qwen2_vl", "tiny"): {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2},
          ("qwen2_vl", "full"): {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4},
          ("qwen2_5_vl", "tiny"): {"depth": 2, "hidden_size": 32, "out_hidden_size": 64, "intermediate_size": 64,
                                   "num_heads": 2, "window_size": 56, "fullatt_block_indexes": [1]},
          ("qwen2_5_vl", "full"): {"depth": 32, "hidden_size": 1280, "out_hidden_size": 2048,
                                   "intermediate_size": 3420, "num_heads": 16, "window_size": 112,
                                   "fullatt_block_indexes": [7, 15, 23, 31]}}
VISION_COMMON = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}


def build_qwen2_vl(generator: torch.Generator, *, family: str = "qwen2_vl", size: str = "tiny",
                   max_side: int = 112, dtype: torch.dtype = torch.float32, device="cpu"):
    """(model, processor): a random-weight Qwen2-VL / Qwen2.5-VL of the given size and a processor whose images
    are resized to 56..max_side px (tiny: 4..16 vision tokens, cheap on one core)."""
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    raw = _byte_level_tokenizer(QWEN_SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    full = size == "full"
    # hub checkpoints pad the embedding beyond the tokenizer too (Qwen2-VL: 151936 rows)
    vocab_size = 151936 if full else len(tokenizer) + 3
    text = {**(FULL_TEXT[family] if full else TINY_TEXT), "vocab_size": vocab_size, "max_position_embeddings": 32768,
            "tie_word_embeddings": full, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    vision = {**VISION[(family, size)], **VISION_COMMON}
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig as Config, Qwen2VLForConditionalGeneration as Model
        vision["in_chans"] = 3
    else:
        from transformers import Qwen2_5_VLConfig as Config, Qwen2_5_VLForConditionalGeneration as Model
        vision["in_channels"] = 3
    config = Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                    video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                    vision_end_token_id=ids["<|vision_end|>"], eos_token_id=ids["<|im_end|>"],
                    pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=full)
    with _global_rng_from(generator, device), torch.device(device):
        model = Model(config).to(dtype)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.02 if full else 0.05, generator=_on(generator, param.device))
        if not full:  # a louder LM head so that p(Yes) is far from uniform and moves with the image
            model.lm_head.weight.normal_(0.0, 0.3, generator=generator)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_side * max_side, patch_size=14,
                                            merge_size=2, temporal_patch_size=2)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_CHAT_TEMPLATE)
    return model, processor


@contextlib.contextmanager
def _global_rng_from(generator: torch.Generator, device="cpu"):
    """transformers initialises weights from the global RNG: seed it from `generator` inside a fork of the RNG state,
    so that the caller's global RNG is left as it was."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        yield


def _on(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """The generator itself on its device, else a generator on `device` seeded from it."""
    if generator.device == device:
        return generator
    return torch.Generator(device).manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))


LLAVA_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>", "<image>")
# LLaVA-1.5's conversation format as a chat template (the hub's llava-hf processors ship one like it)
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def build_llava(generator: torch.Generator):
    """(model, processor): a tiny random-weight LLaVA (CLIP vision tower, projector, Llama) with a CLIP processor."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)
    raw = _byte_level_tokenizer(LLAVA_SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=56, patch_size=14, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer) + 3, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=None, eos_token_id=None, pad_token_id=None)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         pad_token_id=tokenizer.convert_tokens_to_ids("<pad>"), tie_word_embeddings=False)
    with _global_rng_from(generator):
        model = LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.05, generator=generator)
        model.lm_head.weight.normal_(0.0, 0.3, generator=generator)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    return model, processor


IDEFICS3_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>",
                     "<global-img>", *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)))
# SmolVLM-Instruct's chat format (Idefics3 classes)
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def build_idefics3(generator: torch.Generator):
    """(model, processor): a tiny random-weight Idefics3 (SmolVLM v1's classes: SigLIP-style tower, pixel-shuffle
    connector, Llama), one 56 px global image (no splitting) = 4 image tokens."""
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor,
                              Idefics3Processor, PreTrainedTokenizerFast)
    raw = _byte_level_tokenizer(IDEFICS3_SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<end_of_utterance>",
                                        pad_token="<|endoftext|>")
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 56, "patch_size": 14}
    text = {"model_type": "llama", "vocab_size": len(tokenizer) + 3, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 512, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    config = Idefics3Config(vision_config=vision, text_config=text, scale_factor=2,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), tie_word_embeddings=False)
    with _global_rng_from(generator):
        model = Idefics3ForConditionalGeneration(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.05, generator=generator)
        model.lm_head.weight.normal_(0.0, 0.3, generator=generator)
    image_processor = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 56},
                                             max_image_size={"longest_edge": 56})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=IDEFICS3_CHAT_TEMPLATE)
    return model, processor


BUILDERS = {"llava": build_llava, "idefics3": build_idefics3}


def write_qwen2_vl_folder(folder: Path, generator: torch.Generator, *, family: str = "qwen2_vl") -> Path:
    """A tiny Qwen2-VL / Qwen2.5-VL / LLaVA / Idefics3 (family) saved like the hub repos: config.json,
    model.safetensors, tokenizer.json, tokenizer_config.json, processor_config.json, chat_template.jinja."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build = BUILDERS.get(family)
    model, processor = build(generator) if build else build_qwen2_vl(generator, family=family)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder
