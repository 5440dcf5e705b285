"""Shared fixtures: one thread (CI has two shared cores), offline hubs, and one real ComfyUI per test session."""
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

FAMILY_MODELS_VERSION = 1   # bump when devtools/tiny_families.py changes what it writes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure, except a modern-only test in the 2024 pass (and a picture generator run on
    demand): nothing goes untested in CI."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("CI", "").lower() != "true" or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    from comfy_harness import MODERN_ONLY, ON_DEMAND, comfyui_root, is_modern

    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    if (reason.startswith(MODERN_ONLY) and not is_modern(comfyui_root())) or reason.startswith(ON_DEMAND):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run (in one of the two ComfyUI passes): {reason}"


# Markers by what a test needs (its fixtures), so a fast loop can leave the slow parts out (CONTRIBUTING.md):
#   pytest -m "not comfyui and not browser"   the math, verifiers and files: no ComfyUI boot, no server, no Chromium
#   pytest -m "comfyui and not browser"       the nodes inside an in-process ComfyUI
COMFYUI_FIXTURES = {"comfy", "tiny_base_model", "family_models"}
BROWSER_FIXTURES = {"server", "browser", "chromium"}


def pytest_configure(config):
    config.addinivalue_line("markers", "comfyui: boots a real ComfyUI in this process (the comfy fixture)")
    config.addinivalue_line("markers", "browser: a real ComfyUI server and headless Chromium")


def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if used & COMFYUI_FIXTURES:
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    return tmp_path_factory.mktemp("comfyui")


@pytest.fixture(scope="session")
def tiny_models(comfy_base):
    """The tiny SD1.5 UNet and TAESD VAE written under comfy_base/models; returns their file names."""
    from comfy_harness import write_tiny_models

    names = write_tiny_models(comfy_base / "models")
    return dict(names, models_dir=str(comfy_base / "models"))


@pytest.fixture(scope="session")
def comfy(comfy_base, tiny_models):
    """A real ComfyUI in this process (COMFYUI_PATH or the 2024 snapshot) with this pack and the test nodes loaded."""
    from comfy_harness import ComfyRuntime

    return ComfyRuntime.boot(comfy_base, tiny_models["models_dir"])


@pytest.fixture
def tiny_graph(tiny_models):
    """API-format nodes that load the tiny model and make conditioning and an empty 64 px latent."""
    def build(batch=1, seed=0, size=64):
        return {
            "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_models["unet"], "weight_dtype": "default"}},
            "vae": {"class_type": "VAELoader", "inputs": {"vae_name": tiny_models["vae"]}},
            "pos": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": seed, "text": "a red apple"}},
            "neg": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": seed + 1, "text": ""}},
            "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        }
    return build


@pytest.fixture(scope="session")
def family_models(tiny_models):
    """family -> {"unet", "vae"} file names of the tiny SDXL / SD3 / FLUX model and its TAESD, beside the tiny SD1.5.

    Built once per machine into a cache folder (FLUX's random weights take seconds to draw and 1.1 GB to store; both
    ComfyUI passes of CI share them) and linked into the test session's model folders.
    """
    from devtools.tiny_families import write_family_model

    cache = Path(os.environ.get("DIFFUSION_SEARCH_MODEL_CACHE") or
                 Path(tempfile.gettempdir()) / f"diffusion-search-tiny-models-{FAMILY_MODELS_VERSION}")

    def get(family: str) -> dict:
        names = write_family_model(cache, family)
        for kind, name in names.items():
            link = Path(tiny_models["models_dir"]) / kind / name
            if not link.exists():
                link.symlink_to(cache / kind / name)
        return names
    return get


# The browser tests of the search view share one ComfyUI server and one Chromium per session (tests/web_view_support.py).
from web_view_support import browser, chromium, server  # noqa: E402,F401
