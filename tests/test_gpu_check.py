"""`python -m benchmarks.gpu_check --smoke`: the GPU check's every section runs on the CPU with the tiny models and
writes its JSON (the figures themselves come from a GPU run, docs/gpu_check.md)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# it boots ComfyUI (in a subprocess, so no comfy fixture marks it): out of the fast loop
pytestmark = pytest.mark.comfyui


def test_gpu_check_smoke_runs_every_section_and_writes_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--smoke", "--out", str(out)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["meta"]["finished"] and data["meta"]["smoke"]
    sections = data["sections"]
    assert set(sections) == {"paths", "verifiers", "batching", "memory", "decoders", "cache_key", "vlm"}
    paths = {e["name"].split(": ", 1)[1] for e in sections["paths"]}
    assert {"BFS (colourfulness)", "BFS (prompt_colour guide, VLM select)", "DFS", "local search",
            "KSampler (Search)", "Rank Images", "Budget Explorer"} <= paths
    assert all(e["ok"] for e in sections["paths"] + sections["verifiers"] + sections["vlm"])
    assert len(sections["verifiers"]) == 3   # ImageReward: BFS and local search; PickScore: BFS
    batching = sections["batching"][0]
    assert batching["speedup"] > 0 and batching["sequential_s"] > 0
    assert [e["nfe"] for e in sections["memory"] if "nfe" in e] == [2 * 3, 4 * 3]   # N particles x 3 steps
    assert sections["decoders"][0]["vae_scoring_s"] > 0 and sections["cache_key"][0]["seconds"] > 0
