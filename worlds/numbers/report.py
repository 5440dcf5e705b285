"""The numbers experiment's figures as docs/numbers.md shows them, from the JSON files the experiment writes.

    python -m worlds.numbers.report docs/numbers-runs/n4_cfg075.json docs/numbers-runs/n2_n8_cfg075.json
                                    [--plot docs/images/numbers-scaling.png]

Prints markdown: methods ranked by the judge's whole-number accuracy at each N (with the standard error over the
latents), DFS's compute per number against how often plain sampling gets that number wrong (its difficulty), and the
gap between what the guide believes and what the judge finds (reward hacking) for the gradient methods.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def load_rows(paths: list[Path]) -> list[dict]:
    """Every row of the files (later files win for the same CFG, N, method), each with its file's latents per
    number (`seeds`)."""
    rows = {}
    for path in paths:
        document = json.loads(Path(path).read_text())
        seeds = int(document.get("grid", {}).get("seeds") or 0)
        for row in document["rows"]:
            rows[(row["cfg"], row["n"], row["method"])] = {"seeds": seeds, **row}
    return list(rows.values())


def standard_error(p: float, count: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / count) if count else float("nan")


def ranked(rows: list[dict]) -> str:
    """One table per (CFG, N): methods by judge accuracy, best first; plain sampling's row in each."""
    lines = []
    for cfg, n in sorted({(r["cfg"], r["n"]) for r in rows if r["method"] != "plain"}):
        plain = [r for r in rows if r["cfg"] == cfg and r["method"] == "plain"]
        group = sorted([r for r in rows if r["cfg"] == cfg and r["n"] == n] + plain, key=lambda r: -r["judge_acc"])
        lines += [f"\n**CFG {cfg:g}, N = {n}** (± one standard error over the latents)\n",
                  "| rank | method | judge: whole numbers right | judge: digits right | guide log p | NFE / latent "
                  "| s / latent | latents |", "|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(group, 1):
            count = r["seeds"] * len(r["per_class"])
            digits = sum(c["judge_position_acc"] for c in r["per_class"]) / len(r["per_class"])
            name = r["label"] + (f" (= {r['same_as']})" if r.get("same_as") else "")
            lines.append(f"| {i} | {name} | {100 * r['judge_acc']:.1f} % ± {100 * standard_error(r['judge_acc'], count):.1f} "
                         f"| {100 * digits:.1f} % | {r['guide_reward']:.3f} | {r['nfe']:.1f} | "
                         f"{r['seconds_per_latent']:.2f} | {count} |")
    return "\n".join(lines)


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (ties share their mean rank); scipy comes with scikit-learn, which the worlds need."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def dfs_difficulty(rows: list[dict]) -> tuple[str, list[tuple]]:
    """Per number: plain sampling's error rate (difficulty) and the NFE DFS spent on it, at each N."""
    lines, points = [], []
    for cfg in sorted({r["cfg"] for r in rows}):
        plain = next((r for r in rows if r["cfg"] == cfg and r["method"] == "plain"), None)
        if plain is None:
            continue
        error = {c["label"]: 1 - c["judge_acc"] for c in plain["per_class"]}
        for dfs in sorted((r for r in rows if r["cfg"] == cfg and r["method"] == "dfs"), key=lambda r: r["n"]):
            spent = {c["label"]: c["nfe"] for c in dfs["per_class"]}
            labels = sorted(error, key=lambda k: (error[k], spent[k]))
            x, y = [error[k] for k in labels], [spent[k] for k in labels]
            rho = spearman(x, y)
            half = len(labels) // 2           # sorted by plain error (ties by NFE, which only lowers the gap)
            easy, hard = labels[:half], labels[len(labels) - half:]
            mean = lambda ks: sum(spent[k] for k in ks) / len(ks) if ks else float("nan")   # noqa: E731
            err = lambda ks: 100 * sum(error[k] for k in ks) / len(ks)   # noqa: E731
            lines.append(f"| {cfg:g} | {dfs['n']} ({dfs['budget']} NFE cap) | {rho:.2f} | {mean(easy):.1f} "
                         f"({err(easy):.0f} %) | {mean(hard):.1f} ({err(hard):.0f} %) | {dfs['nfe']:.1f} |")
            points.append((cfg, dfs["n"], labels, x, y))
    head = ["| CFG | DFS at N | Spearman ρ (plain error, DFS NFE) | NFE on the easier half of the numbers (their "
            "plain error) | NFE on the harder half (their plain error) | mean NFE |", "|---|---|---|---|---|---|"]
    return "\n".join(head + lines), points


def hacking(rows: list[dict]) -> str:
    """What the guide believes against what the judge finds: a guide far above the judge is reward hacking."""
    methods = ("plain", "best_of_n", "bfs", "local_guidance", "local", "local_dual", "bfs_local", "dual")
    lines = ["| CFG | N | method | guide: whole numbers right | judge: whole numbers right | gap | guide log p | "
             "judge log p |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in rows if r["method"] in methods),
                    key=lambda r: (r["cfg"], r["n"], methods.index(r["method"]))):
        lines.append(f"| {r['cfg']:g} | {r['n']} | {r['label']} | {100 * r['guide_acc']:.1f} % | "
                     f"{100 * r['judge_acc']:.1f} % | {100 * (r['guide_acc'] - r['judge_acc']):+.1f} | "
                     f"{r['guide_reward']:.3f} | {r['judge_logp']:.3f} |")
    return "\n".join(lines)


def plot(rows: list[dict], points: list[tuple], path: Path) -> None:
    """Left: judge accuracy against NFE per method over N; right: DFS's NFE per number against its difficulty."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    cfg = min(r["cfg"] for r in rows)
    markers = "osD^v<>pP*Xhd8H"
    methods = sorted({r["method"] for r in rows if r["cfg"] == cfg and r["method"] != "plain"})
    for i, name in enumerate(methods):
        line = sorted((r for r in rows if r["cfg"] == cfg and r["method"] == name), key=lambda r: r["nfe"])
        left.plot([r["nfe"] for r in line], [100 * r["judge_acc"] for r in line], marker=markers[i % len(markers)],
                  label=line[0]["label"].split(" (")[0], linewidth=1, color=plt.cm.tab20(i % 20))
    plain = next(r for r in rows if r["cfg"] == cfg and r["method"] == "plain")
    left.axhline(100 * plain["judge_acc"], color="grey", linestyle="--", label="plain sampling")
    left.set_xscale("log", base=2)
    left.set_xlabel("NFE per latent")
    left.set_ylabel("judge: whole numbers right (%)")
    left.set_title(f"numbers world, CFG {cfg:g}")
    left.legend(fontsize=7, ncol=2)
    for cfg_, n, labels, x, y in points:
        if cfg_ == cfg:
            right.scatter([100 * v for v in x], y, label=f"DFS, budget N = {n}", s=18)
    right.set_xlabel("plain sampling's error on the number (%)")
    right.set_ylabel("DFS NFE per latent")
    right.set_title("DFS spends its compute where plain sampling fails")
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worlds.numbers.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files of python -m worlds.numbers.experiment")
    parser.add_argument("--plot", type=Path, default=None, help="write the two-panel PNG here")
    args = parser.parse_args(argv)
    rows = load_rows(args.runs)
    if not rows:
        parser.error("the files hold no rows: run python -m worlds.numbers.experiment --json PATH first")
    difficulty, points = dfs_difficulty(rows)
    print("## Ranking at equal NFE\n" + ranked(rows))
    print("\n## DFS: compute per number against its difficulty\n\n" + difficulty)
    print("\n## Reward hacking: the guide's verdict against the judge's\n\n" + hacking(rows))
    if args.plot:
        plot(rows, points, args.plot)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
