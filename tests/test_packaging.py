"""Packaging rules: lower bounds only, never image-reward in what ComfyUI-Manager installs, a light top-level import."""
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"(==|~=|<)")


def test_dependencies_are_lower_bounds_and_never_image_reward():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        declared += extra
    manager = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    for requirement in declared + manager:
        assert not PIN.search(requirement), f"{requirement}: use a lower bound (>=), never a pin"
        assert not re.match(r"image[-_]reward", requirement, re.I), "image-reward's pins break ComfyUI installs"
    comfy = project["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "includes", "requires-comfyui"} <= set(comfy)


LIGHT_IMPORT = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
pack = importlib.import_module(sys.argv[2])
heavy = ('open_clip', 'transformers', 'timm', 'torchvision', 'facenet_pytorch', 'ImageReward', 'comfy', 'nodes')
print(json.dumps({'nodes': sorted(pack.NODE_CLASS_MAPPINGS), 'web': pack.WEB_DIRECTORY,
                  'heavy': sorted(m for m in sys.modules if m.split('.')[0] in heavy)}))
"""


def test_top_level_import_is_light_and_needs_no_comfyui(tmp_path):
    """ComfyUI imports the pack at start-up: that must not pull in open_clip, transformers or torchvision."""
    (tmp_path / "diffusion_search_pack").symlink_to(REPO, target_is_directory=True)  # the checkout's name may have dots
    out = subprocess.run([sys.executable, "-c", LIGHT_IMPORT, str(tmp_path), "diffusion_search_pack"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=""))
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["web"] == "./web" and "DiffusionSearchBFSSampler" in report["nodes"]



def test_checkout_folder_with_a_hyphen_still_collects():
    """The README clones into "comfyui-diffusion-search"; pytest then imports the root __init__.py as a bare module."""
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); m = importlib.import_module('__init__'); "
            "print(len(m.NODE_CLASS_MAPPINGS), m.WEB_DIRECTORY)")
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "./web"]
