"""What the budget explorer shows: runs summarised per (preset, budget), a markdown table and a reward-vs-compute plot.

Plain Python and matplotlib (imported when a plot is drawn, on its own Agg canvas: no pyplot, no global backend).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass
class Run:
    """One finished search of the exploration: which setting, what it cost, what it found."""

    preset: str
    budget: int
    seed: int
    nfe_per_image: float     # denoiser evaluations per latent (every particle, backtrack and recurrence counted)
    seconds: float           # wall time of the whole search (denoising, decoding and scoring), all latents
    reward: float            # mean over the latents of the selected sample's reward (selecting verifier)
    rewards: list            # the selected reward of each latent

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Cell:
    """The runs of one (preset, budget) over the seeds."""

    preset: str
    budget: int
    runs: int
    nfe_per_image: float
    seconds: float
    reward: float
    sem: float               # standard error of the mean reward over the seeds (0 with one seed)
    best: float


def summarise(runs: list[Run]) -> list[Cell]:
    """Cells in the order their presets and budgets first appear in ``runs``."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.preset, run.budget), []).append(run)
    cells = []
    for (preset, budget), group in groups.items():
        rewards = [r.reward for r in group]
        mean = sum(rewards) / len(rewards)
        var = sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1) if len(rewards) > 1 else 0.0
        cells.append(Cell(preset, budget, len(group), sum(r.nfe_per_image for r in group) / len(group),
                          sum(r.seconds for r in group) / len(group), mean, math.sqrt(var / len(rewards)),
                          max(rewards)))
    return cells


def _number(value: float) -> str:
    return f"{value:.4g}"


def markdown_table(runs: list[Run], planned: int, verifier: str, cancelled: bool = False,
                   failure: str | None = None) -> str:
    """A summary table per (preset, budget), then one row per run (in the order they ran); ``failure``: the error
    that stopped the exploration after these runs."""
    status = f"{len(runs)} of {planned} runs" + (" (cancelled: the runs below finished before Cancel)"
                                                if cancelled else "")
    if failure:
        status += " (stopped by an error: the runs below finished before it)"
    lines = [f"## Search budget explorer: {verifier}, {status}", ""]
    if failure:
        lines += [f"The next run failed with {failure}", ""]
    if not runs:
        return "\n".join(lines + ["No run finished."])
    lines += ["| preset | budget | seeds | NFE / image | seconds / run | reward (mean ± s.e.) | best |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for c in summarise(runs):
        lines.append(f"| {c.preset} | {c.budget} | {c.runs} | {_number(c.nfe_per_image)} | {c.seconds:.2f} | "
                     f"{_number(c.reward)} ± {_number(c.sem)} | {_number(c.best)} |")
    lines += ["", "| run | preset | budget | seed | NFE / image | seconds | reward |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    for index, r in enumerate(runs, 1):
        lines.append(f"| {index} | {r.preset} | {r.budget} | {r.seed} | {_number(r.nfe_per_image)} | "
                     f"{r.seconds:.2f} | {_number(r.reward)} |")
    return "\n".join(lines)


def plot_image(runs: list[Run], title: str, width_px: int = 1000, height_px: int = 420) -> torch.Tensor:
    """IMAGE [1, H, W, 3] in [0, 1]: mean reward ± s.e. over seeds against NFE per image and seconds per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    dpi = 100
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2, sharey=True)
    cells = summarise(runs)
    presets = list(dict.fromkeys(c.preset for c in cells))
    for preset in presets:
        mine = sorted((c for c in cells if c.preset == preset), key=lambda c: c.budget)
        for ax, key in zip(axes, ("nfe_per_image", "seconds")):
            ax.errorbar([getattr(c, key) for c in mine], [c.reward for c in mine], yerr=[c.sem for c in mine],
                        marker="o", capsize=3, label=preset)
    for ax, label in zip(axes, ("NFE per image (denoiser evaluations)", "seconds per run")):
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
        values = [getattr(c, "nfe_per_image" if ax is axes[0] else "seconds") for c in cells]
        if values and min(values) > 0 and max(values) / min(values) >= 4:
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    nfe = sorted({round(c.nfe_per_image, 1) for c in cells})
    if 0 < len(nfe) <= 12:  # the budgets' own NFE as ticks, written out (not 2^k)
        axes[0].set_xticks(nfe, [f"{v:g}" for v in nfe])
        axes[0].minorticks_off()
    axes[0].set_ylabel("reward of the selected sample")
    if presets:
        axes[0].legend(title="preset", fontsize="small")
    else:
        axes[0].text(0.5, 0.5, "no run finished", ha="center", va="center", transform=axes[0].transAxes)
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    height, width = canvas.get_width_height()[::-1]
    return (rgba.reshape(height, width, 4)[..., :3].float() / 255.0)[None]
