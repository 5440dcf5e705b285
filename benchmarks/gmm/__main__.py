"""Exact Gaussian-mixture benchmark of the search algorithms (the paper's tables on a testbed with exact answers).

    python -m benchmarks.gmm                       # full run (a few minutes): all scenarios and studies
    python -m benchmarks.gmm --quick --json PATH   # under a minute: main table, short ablation, speed check

Prints: every method at N = 4, 8, 16 (mean true reward ± SEM over items/seeds, energy distance to the tilted
target p0·exp(λ·r), NFE per sample, seconds); the BFS design-space ablation; DFS on mixed easy/hard instances and
where DFS wins or loses per mode; local search beyond the base support; dual verifiers; convergence of fk, das and
BFS with an ESS threshold to the tilted target with N; the bookkeeping-overhead ratio. Writes a reward-versus-NFE
plot (PNG) and, with --json, ``{"rows": [...], ...}``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time

import torch

from . import studies
from .methods import METHODS, run_rows
from .scenarios import scenarios
from .speed import speed_check

log = logging.getLogger(__name__)
MAIN = "offmanifold"


def table(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}")
    print(f"{'method':34s} {'N':>3s} {'NFE':>7s} {'reward':>16s} {'dist':>7s} {'sec':>6s}")
    for r in rows:
        print(f"{r['method']:34s} {r['n_particles']:3d} {r['nfe']:7.1f} {r['reward_mean']:8.3f} ± "
              f"{r['reward_sem']:.3f} {r['target_distance']:7.3f} {r['seconds']:6.2f}")


def claims(rows: list[dict], mixed: dict | None, beyond: dict | None) -> dict:
    """The issue's claims, each with the figures behind it (measured, never asserted here)."""
    by = {(r["method"], r["n_particles"]): r for r in rows}
    sizes = sorted({r["n_particles"] for r in rows})
    out = {"beats_bon_at_equal_n": {}, "bfs_vs_fk": {}, "bfs_distance_by_n": {}}
    for m in METHODS[1:]:
        out["beats_bon_at_equal_n"][m] = {n: round(by[(m, n)]["reward_mean"] - by[("bon", n)]["reward_mean"], 4)
                                          for n in sizes}
    for n in sizes:
        out["bfs_vs_fk"][n] = round(by[("bfs", n)]["reward_mean"] - by[("fk", n)]["reward_mean"], 4)
        out["bfs_distance_by_n"][n] = round(by[("bfs", n)]["target_distance"], 4)
    if mixed:
        out["dfs_nfe_saving_at_equal_reward"] = mixed["nfe_saving_at_equal_reward"]
    if beyond:
        out["local_share_beyond_support"] = {k: v["share_beyond"] for k, v in beyond.items() if isinstance(v, dict)}
    return out


def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in METHODS:
        pts = sorted((r["nfe"], r["reward_mean"], r["reward_sem"]) for r in rows if r["method"] == m)
        if pts:
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=2, label=m)
    ax.set_xscale("log")
    ax.set_xlabel("NFE per sample (denoiser evaluations, + backward passes through it)")
    ax.set_ylabel("mean true reward")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gmm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="main scenario only, fewer items (< 60 s)")
    parser.add_argument("--json", help="write the rows and studies as JSON here")
    parser.add_argument("--plot", default="benchmarks/out/gmm_reward_vs_nfe.png", help="reward-vs-NFE PNG path")
    parser.add_argument("--items", type=int, help="independent items (searches) per seed")
    parser.add_argument("--seeds", type=int, help="number of seeds")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    n_items = args.items or (128 if args.quick else 512)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    sizes = (4, 8, 16)
    scs = scenarios()
    print(f"# GMM testbed: {N_ITEMS_NOTE}; items/seed={n_items}, seeds={len(seeds)}")
    for sc in scs.values():
        print(f"- {sc.name}: λ={sc.lam}; {sc.note}")

    rows = []
    for name in ([MAIN] if args.quick else [MAIN, "smooth", "bumps"]):
        sc_rows = [run_rows(m, scs[name], n, n_items, seeds) for m in METHODS for n in sizes]
        table(f"{name}: every method at N = 4, 8, 16 (reward = true reward, dist = energy distance to target)",
              sc_rows)
        rows += sc_rows
    main_rows = [r for r in rows if r["scenario"] == MAIN]
    plot(main_rows, args.plot, f"GMM testbed ({MAIN}): reward vs NFE")
    print(f"\nplot: {args.plot}")

    ablation_rows = []
    for name in ([MAIN] if args.quick else [MAIN, "smooth"]):
        for n in ((8,) if args.quick else sizes):
            part = studies.ablation(scs[name], n, n_items, seeds)
            table(f"{name}: BFS design-space ablation at N = {n} (one axis varied around increase/max/ssp)", part)
            ablation_rows += part

    mixed = beyond = dual = conv = modes = None
    if not args.quick:
        mixed = studies.dfs_mixed(n_items, seeds)
        print("\n## DFS vs BFS on mixed easy/hard instances (pooled reward, NFE per sample)")
        for n, v in mixed["bfs"].items():
            print(f"BFS N={n:2d}: reward {v['reward_mean']:.3f} ± {v['reward_sem']:.3f}  NFE {v['nfe']:6.1f}  "
                  f"per instance {json.dumps(v['per_instance'])}")
        for d, v in mixed["dfs"].items():
            print(f"DFS δ={d:.2f}: reward {v['reward_mean']:.3f} ± {v['reward_sem']:.3f}  NFE {v['nfe']:6.1f}  "
                  f"per instance {json.dumps(v['per_instance'])}")
        print(f"NFE saved by DFS per δ (vs the NFE BFS needs for the same reward): "
              f"{mixed['nfe_saving_at_equal_reward']}")
        beyond = studies.beyond_support(scs["smooth"], 8, n_items, seeds)
        print(f"\n## Local search beyond the base support (smooth, N=8): {json.dumps(beyond, indent=1)}")
        dual = studies.dual_verifiers(scs[MAIN], 8, n_items, seeds)
        print(f"\n## Dual verifiers (guide has a spurious spike; N=8): {json.dumps(dual, indent=1)}")
        modes = studies.dfs_study(n_items // 2, seeds[:1])
        print("\n## DFS vs BFS per instance (reward: a bump at one mode; success = reward >= 0.5; 192 NFE budget)")
        for name, row in modes.items():
            print(f"### {name}")
            for label, v in row.items():
                print(f"{label:40s} success {v['success']:.3f}  reward {v['reward']:.3f}  NFE {v['nfe']:6.1f}")
        conv = studies.convergence(scs["smooth"], (4, 16, 64, 256), n_items // 2, seeds)
        print(f"\n## Convergence to the tilted target (smooth, λ = 1; rare-mode share of the target "
              f"{conv['target_rare_share']:.3f}): energy distance (rare-mode share) at N = 4 / 16 / 64 / 256")
        for name, by_n in conv.items():
            if isinstance(by_n, dict):
                print(f"{name:30s} " + "  ".join(f"{v['distance']:.3f} ({v['rare_share']:.2f})" for v in by_n.values()))

    speed = speed_check(repeats=3, n_steps=30) if args.quick else speed_check(repeats=7)
    print(f"\n## Bookkeeping overhead (N = {speed['n_particles']}, {speed['n_steps']} steps, d = {speed['dim']}, "
          f"process CPU time, min of {speed['repeats']}): plain Euler-ancestral {speed['plain_s']:.3f} s; "
          f"ratios to it: best_of_n {speed['best_of_n_ratio']:.3f}, bfs {speed['bfs_ratio']:.3f}, "
          f"svdd (scores + resamples every step) {speed['svdd_ratio']:.3f}")
    summary = claims(main_rows, mixed, beyond)
    print(f"\n## Claims (figures, {MAIN}): {json.dumps(summary)}")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    doc = {"rows": rows, "ablation": ablation_rows, "dfs_mixed": mixed, "dfs_modes": modes, "beyond_support": beyond,
           "dual_verifiers": dual, "convergence": conv, "speed": speed, "claims": summary}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1, default=str)
    return doc


N_ITEMS_NOTE = "2-D mixture, weights 0.6/0.35/0.05, variance 0.25, 24 Euler-ancestral steps (eta 1), resampling every 4"

if __name__ == "__main__":
    main()
