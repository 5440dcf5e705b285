"""What the tests use to run real ComfyUI: re-exported from benchmarks/ (shared with the demo and benchmarks)."""
from benchmarks.comfy_runtime import (  # noqa: F401
    PACK_NAME, ComfyExecutionError, ComfyInterrupted, ComfyRuntime, comfyui_root, is_modern, make_custom_nodes_dir)
from benchmarks.tiny_models import write_tiny_models  # noqa: F401
from benchmarks.ui_workflow import ui_to_api  # noqa: F401
