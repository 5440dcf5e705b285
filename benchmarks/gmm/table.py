"""The paper's whole table on the exact GMM testbed: BoN, FK, DAS, TreeG, SVDD, SoP, DSearch (+ DSearch-R), BFS and
progressive seed pruning at equal NFE per sample (the budget of N̄ full trajectories, N̄ = 4, 8, 16).

    python -m benchmarks.gmm.table                      # 3 scenarios x 3 budgets, 3 seeds x 512 items (~3 min)
    python -m benchmarks.gmm.table --quick --json PATH  # the main scenario, 1 seed x 128 items

BFS-family presets and seed pruning cost exactly N̄·T. SoP and DSearch have their own cost structure: each keeps its
source's settings where they fit (SoP: start 0.8, Δf 0.1, Δb 0.2; DSearch: exponential drop and search schedules)
and takes the largest (N, M) / (N, oversample, children, w) whose NFE (DSearch: expected over its search draws)
stays within the budget; the table prints the NFE measured and the settings chosen. Rank = by mean true reward.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import time

import torch

from search_core import Trace, get_preset, sample_bfs
from search_core.beam import expected_nfe
from search_core.sop import sop_nfe

from .methods import row, run
from .scenarios import N_STEPS, scenarios, sigma_schedule

BFS_FAMILY = ["bon", "fk", "das", "treeg", "svdd", "bfs"]
METHODS = BFS_FAMILY[:5] + ["sop", "dsearch", "dsearch_r", "seed_pruning", "bfs"]
BUDGETS = (4, 8, 16)   # N̄: NFE per sample = N̄ · 24 steps


def fit_sop(budget: int):
    """(N, config): the most NFE within ``budget``, ties to M / N nearest the paper's 8 / 4."""
    sigmas = sigma_schedule()
    best = None
    for n, m in itertools.product(range(1, 33), range(1, 17)):
        cost = sop_nfe(sigmas, "eps", get_preset("sop", branches=m), n)
        key = (cost, -abs(m / n - 2.0))
        if cost <= budget and (best is None or key > best[0]):
            best = (key, n, m)
    return best[1], get_preset("sop", branches=best[2])


def fit_dsearch(budget: int, preset: str):
    """(N, config): DSearch's shape as far as the budget allows: expected NFE in [0.8, 1] x budget, then the largest
    oversample (source: 5), branching (children >= 2), w, N, NFE, in that order of preference."""
    best = None
    oversamples = (1.0,) if preset == "dsearch_r" else (1.0, 2.0, 3.0, 5.0)
    for n, over, kids, width in itertools.product(range(1, 33), oversamples, (1, 2, 3, 5), (1.0, 2.0, 5.0)):
        cfg = get_preset(preset, oversample=over, children=kids, search_width=width)
        cost = expected_nfe(cfg, n, N_STEPS)
        key = (over, kids > 1, width, n, cost)
        if 0.8 * budget <= cost <= budget and (best is None or key > best[0]):
            best = (key, n, cfg)
    return best[1], best[2]


def settings(method: str, n_bar: int):
    """(N, config or None) of ``method`` at the budget of N̄ trajectories."""
    if method == "sop":
        return fit_sop(n_bar * N_STEPS)
    if method in ("dsearch", "dsearch_r"):
        return fit_dsearch(n_bar * N_STEPS, method)
    if method == "seed_pruning":
        return n_bar, get_preset("seed_pruning")
    return n_bar, None


def run_baseline(scenario, n: int, config, n_items: int, seed: int):
    sigmas = sigma_schedule()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_items, scenario.mixture.dim, generator=g) * sigmas[0]
    res = Trace()
    start = time.perf_counter()
    out = sample_bfs(scenario.mixture.denoiser("eps"), x, sigmas, score_fn=scenario.verifier, generator=g,
                     n_particles=n, config=config, trace=res)
    return out, res, time.perf_counter() - start


def measure(method: str, scenario, n_bar: int, n_items: int, seeds: list[int]) -> dict:
    n, config = settings(method, n_bar)
    outs, nfe, secs = [], 0, 0.0
    for seed in seeds:
        if config is None:
            out, res, s = run(method, scenario, n, n_items, seed)
        else:
            out, res, s = run_baseline(scenario, n, config, n_items, seed)
        outs.append(out)
        nfe, secs = nfe + res.nfe, secs + s
    r = row(method, scenario, n, torch.cat(outs), Trace(nfe=nfe), secs / len(seeds))
    r.update(budget=n_bar * N_STEPS, n_bar=n_bar, settings=None if config is None else config.to_dict())
    return r


def ranks(rows: list[dict]) -> dict:
    """Per scenario and budget: methods best first by mean true reward."""
    out = {}
    for (sc, b) in sorted({(r["scenario"], r["budget"]) for r in rows}):
        part = sorted((r for r in rows if r["scenario"] == sc and r["budget"] == b), key=lambda r: -r["reward_mean"])
        out[f"{sc}@{b}"] = [r["method"] for r in part]
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gmm.table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="main scenario, 1 seed x 128 items")
    parser.add_argument("--json", help="write the rows and ranks as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    n_items, seeds = (128, [0]) if args.quick else (512, [0, 1, 2])
    scs = scenarios()
    rows = []
    for name in (["offmanifold"] if args.quick else ["offmanifold", "smooth", "bumps"]):
        print(f"\n## {name}: true reward at equal NFE per sample ({len(seeds)} seed(s) x {n_items} items)")
        print(f"{'method':13s} {'budget':>6s} {'N':>3s} {'NFE':>7s} {'reward':>16s} {'dist':>7s}  settings")
        for n_bar in BUDGETS:
            for method in METHODS:
                r = measure(method, scs[name], n_bar, n_items, seeds)
                rows.append(r)
                cfg = r["settings"] or {}
                shown = {"sop": ("branches",), "dsearch": ("oversample", "children", "search_width"),
                         "dsearch_r": ("children", "search_width")}.get(method, ())
                extra = {k: cfg[k] for k in shown}
                print(f"{method:13s} {r['budget']:6d} {r['n_particles']:3d} {r['nfe']:7.1f} {r['reward_mean']:8.3f} ± "
                      f"{r['reward_sem']:.3f} {r['target_distance']:7.3f}  {json.dumps(extra) if extra else ''}")
    order = ranks(rows)
    print("\n## Rank by mean true reward (best first)")
    for key, methods in order.items():
        print(f"{key:18s} {' > '.join(methods)}")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    doc = {"rows": rows, "ranks": order}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1, default=str)
    return doc


if __name__ == "__main__":
    main()
