"""What the tests use to run real ComfyUI: re-exported from benchmarks/ (shared with the demo and benchmarks)."""
import pytest

from benchmarks.comfy_runtime import (  # noqa: F401
    PACK_NAME, ComfyExecutionError, ComfyInterrupted, ComfyRuntime, comfyui_root, is_modern, make_custom_nodes_dir)
from benchmarks.tiny_models import write_tiny_models  # noqa: F401
from benchmarks.ui_workflow import ui_to_api  # noqa: F401

# The one reason a test may skip in CI: it needs modern ComfyUI and this pass runs the 2024 snapshot (.ci/run runs both;
# tests/conftest.py fails any other skip under CI=true).
MODERN_ONLY = "needs modern ComfyUI"
# A generator of committed pictures run by hand (e.g. UPDATE_SCREENSHOTS=1), not a check: its skip is no gap in CI.
ON_DEMAND = "on demand"


def skip_unless_modern(comfy, what: str) -> None:
    """Skip, with the reason CI accepts, when the running ComfyUI is the 2024 snapshot."""
    if not comfy.modern:
        pytest.skip(f"{MODERN_ONLY}: {what} (set COMFYUI_PATH to a modern ComfyUI; CI runs it in its modern pass)")
