"""The search view's pure JS modules (web/search_validate.js, web/search_store.js) under node's test runner, fed the
traces search_core really produces (every BFS preset and baseline, DFS with backtracks, local search), so the Python producer and
the JS reader of the one trace format cannot drift apart."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from search_core import BASELINES, PRESETS, DFSConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local
from search_core.testbed import BumpsReward, LinearReward, standard_mixture

JS_TESTS = Path(__file__).resolve().parent / "js"
GMM = standard_mixture()


def _traces(folder: Path) -> list[str]:
    sigmas = torch.linspace(6.0, 0.0, 9)
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    runs = {}
    # BFS presets step through every level; the baselines (SoP, DSearch, seed pruning) emit steps where they select
    for preset in sorted(PRESETS) + sorted(BASELINES):
        prefix = "bfs" if preset in PRESETS else "baseline"
        runs[f"{prefix}_{preset}"] = lambda res, p=preset: sample_bfs(
            GMM.denoiser(), x, sigmas, score_fn=LinearReward([0.0, 1.0]), generator=torch.Generator().manual_seed(1),
            n_particles=4, config=get_preset(p), trace=res)
    runs["dfs"] = lambda res: sample_dfs(
        GMM.denoiser(), x, sigmas, score_fn=BumpsReward([[0.0, 3.0]], [0.6], [1.0]),
        generator=torch.Generator().manual_seed(1), config=DFSConfig(delta=0.9, backtrack_steps=3, nfe_budget=30), trace=res)
    runs["local"] = lambda res: sample_local(
        GMM.denoiser(), x, sigmas, guide_fn=LinearReward([0.0, 1.0]), generator=torch.Generator().manual_seed(1),
        trace=res)
    for name, run in runs.items():
        res = Trace()
        run(res)
        (folder / f"{name}.json").write_text(res.to_json())
    return sorted(runs)


def test_pure_view_modules_read_search_cores_traces(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (Node.js) is not installed: apt-get install nodejs")
    names = _traces(tmp_path)
    assert '"backtrack"' in (tmp_path / "dfs.json").read_text(), "the DFS trace must backtrack"
    done = subprocess.run([node, "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120,
                          env={"TRACE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    passed = int(re.search(r"^# pass (\d+)", report, re.M).group(1))
    assert passed == 3 + len(names), report[-2000:]
