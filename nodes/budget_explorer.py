"""Search Budget Explorer: run presets at several budgets over seeds and plot reward against compute.

Each run is KSampler (Search)'s own path (`search_ksampler.run_search` with the plan its `_plan` builds), so the
explorer measures exactly what the artist would get from that node at that setting.
"""
from __future__ import annotations

import json
import logging
import time

from . import compat, widgets
from .budget_report import Run, markdown_table, plot_image
from .search_ksampler import DFS, _latent_samples, _plan, run_search
from .search_sampler import ScoringSpec

log = logging.getLogger(__name__)

MAX_RUNS = 1000


def explorable() -> list[str]:
    """Every BFS preset KSampler (Search) offers, and dfs."""
    return [name for name in widgets.preset_choices() if name != widgets.CUSTOM] + [DFS]


def parse_presets(text: str) -> list[str]:
    names = [part.strip().lower() for part in str(text).replace(";", ",").split(",") if part.strip()]
    if not names:
        raise ValueError(f"'presets' is empty: list one or more of {', '.join(explorable())}, e.g. 'best_of_n, bfs'")
    unknown = [name for name in names if name not in explorable()]
    if unknown:
        raise ValueError(f"'presets' has unknown name(s) {', '.join(unknown)}: use a comma list of "
                         f"{', '.join(explorable())}")
    return list(dict.fromkeys(names))


def parse_budgets(text: str) -> list[int]:
    parts = [part.strip() for part in str(text).replace(";", ",").split(",") if part.strip()]
    try:
        budgets = sorted({int(part) for part in parts})
    except ValueError:
        raise ValueError(f"'budgets' must be a comma list of whole numbers such as '1, 2, 4, 8', got {text!r}") from None
    if not budgets or budgets[0] < 1:
        raise ValueError(f"'budgets' must list whole numbers >= 1 (particles for BFS presets, multiples of the "
                         f"plain sampler's NFE for dfs), got {text!r}")
    return budgets


class DiffusionSearchBudgetExplorer:
    """Runs presets x budgets x seeds with KSampler (Search)'s path; outputs a reward-vs-compute plot and a table."""

    DESCRIPTION = ("Which preset and budget should I use? Runs each preset at each budget (BFS presets: particles "
                   "N; dfs: NFE budget = budget x steps) over several seeds on this model, prompt and verifier, and "
                   "plots the selected sample's reward against NFE and seconds (mean ± s.e. over seeds). Cancel "
                   "keeps the runs that finished: the plot and table of those are returned and saved.")
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("plot", "table", "runs_json")
    OUTPUT_TOOLTIPS = ("Reward of the selected sample against NFE and seconds, one line per preset (mean ± s.e.).",
                       "The same runs as a Markdown table.",
                       "JSON: every run (preset, budget, seed, reward, NFE, seconds).")
    FUNCTION = "explore"
    CATEGORY = widgets.SEARCH_CATEGORY
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        bfs, dfs = widgets.bfs_inputs(), widgets.dfs_inputs()
        sampling = widgets.sampling_inputs(compat.scheduler_names())
        required = {
            **{name: sampling[name] for name in ("model", "positive", "negative", "latent_image")},
            **widgets.scoring_inputs(),
            "presets": ("STRING", {"default": "best_of_n, bfs", "tooltip":
                        f"Comma list of what to compare: {', '.join(explorable())}."}),
            "budgets": ("STRING", {"default": "1, 2, 4, 8", "tooltip":
                        "Comma list of budgets: particles N for BFS presets; for dfs the NFE budget in multiples "
                        "of the plain sampler's (budget x steps). 1 = the plain sampler."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "First seed; the runs use seed, seed+1, ... (same seeds for every setting)."}),
            "seeds": ("INT", {"default": 3, "min": 1, "max": 100,
                              "tooltip": "Seeds per setting: the error bars are the standard error over them."}),
            **{name: sampling[name] for name in ("steps", "cfg", "scheduler", "denoise")},
            "lam": bfs["lam"],
            "resampling_steps": bfs["resampling_steps"],
            "delta": dfs["delta"],
            "backtrack_steps": dfs["backtrack_steps"],
            **widgets.scoring_options(),
            "filename_prefix": ("STRING", {"default": "budget_explorer", "tooltip":
                                "The table (.md) and runs (.json) are also saved in ComfyUI's output folder."}),
        }
        optional = {**widgets.optional_scoring_inputs(),
                    "local_search": (widgets.LOCAL_SEARCH_TYPE, {"tooltip": "Attach Langevin local search."})}
        return {"required": required, "optional": optional, "hidden": {"unique_id": "UNIQUE_ID"}}

    @classmethod
    def VALIDATE_INPUTS(cls, cfg=None, denoise=None, lam=None, delta=None, presets=None, budgets=None,
                        temporal_weight=None):
        try:  # linked inputs arrive as None here: explore() checks them again when it runs
            if presets is not None:
                parse_presets(presets)
            if budgets is not None:
                parse_budgets(budgets)
        except ValueError as error:
            return str(error)
        return widgets.validate_floats(cls, cfg=cfg, denoise=denoise, lam=lam, delta=delta,
                                       temporal_weight=temporal_weight)

    def explore(self, model, positive, negative, latent_image, vae, verifier, prompt, presets, budgets, seed, seeds,
                steps, cfg, scheduler, denoise, lam, resampling_steps, delta, backtrack_steps, score_size, chunk_size,
                filename_prefix="budget_explorer", select_verifier=None, local_search=None, unique_id=None,
                **video):
        widgets.check_floats(type(self), cfg=cfg, denoise=denoise, lam=lam, delta=delta,
                             temporal_weight=video.get("temporal_weight"))
        names, sizes = parse_presets(presets), parse_budgets(budgets)
        n_items = _latent_samples(latent_image).shape[0]
        scoring = ScoringSpec(vae=vae, guide_verifier=verifier, prompt=prompt, select_verifier=select_verifier,
                              score_size=int(score_size), chunk_size=int(chunk_size),
                              video=widgets.video_scoring(**video)).validate()
        # Cheapest first, so a cancelled exploration keeps every preset at the small budgets; within a budget the
        # presets take turns seed by seed, so a busy spell of the machine does not land on one preset's seconds.
        jobs = [(name, size, int(seed) + k) for size in sizes for k in range(int(seeds)) for name in names]
        if len(jobs) > MAX_RUNS:
            raise ValueError(f"{len(jobs)} runs planned (presets x budgets x seeds); at most {MAX_RUNS}: drop some")
        plans = {(name, size): _plan(name, scoring, size, lam, resampling_steps, delta, backtrack_steps,
                                     size * int(steps), local_search, unique_id) for name in names for size in sizes}
        for plan in plans.values():
            plan.reuse = False   # each budget is measured as one whole run, not as an extension of a smaller one
            plan.validate()
        bar = compat.progress_bar(len(jobs) * int(steps), unique_id)
        compat.load_models_to_device([model])   # model loading is not charged to the first run's seconds
        runs, cancelled = [], False
        for index, (name, size, run_seed) in enumerate(jobs):
            compat.send_progress_text(f"run {index + 1}/{len(jobs)}: {name}, budget {size}, seed {run_seed}",
                                      unique_id)
            done = index * int(steps)

            def on_step(step, x0, x, total_steps, done=done):
                bar.update_absolute(min(done + step + 1, len(jobs) * int(steps)))

            try:
                started = time.perf_counter()
                _, outcome = run_search(model, run_seed, steps, cfg, scheduler, positive, negative, latent_image,
                                        denoise, plans[(name, size)], callback=on_step)
                runs.append(_record(name, size, run_seed, outcome.result, n_items, time.perf_counter() - started))
            except compat.interrupt_exception():
                cancelled = True
                log.warning("budget explorer cancelled after %d of %d runs; returning those", len(runs), len(jobs))
                break
        return self._outputs(runs, len(jobs), verifier, select_verifier, cancelled, filename_prefix)

    def _outputs(self, runs, planned, verifier, select_verifier, cancelled, filename_prefix):
        name = getattr(select_verifier or verifier, "name", type(verifier).__name__)
        table = markdown_table(runs, planned, name, cancelled)
        document = json.dumps({"version": 1, "verifier": name, "planned": planned, "cancelled": cancelled,
                               "runs": [run.to_dict() for run in runs]})
        stem = compat.output_stem(filename_prefix or "budget_explorer")
        for extension, text in (("md", table), ("json", document)):
            with open(f"{stem}.{extension}", "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        log.info("budget explorer: %d of %d runs; table saved as %s.md", len(runs), planned, stem)
        title = f"reward ({name}) vs compute" + (f" - cancelled after {len(runs)} of {planned} runs" if cancelled
                                                 else "")
        plot = plot_image(runs, title)
        return {"ui": {"text": [table]}, "result": (plot, table, document)}


def _record(preset, budget, seed, result, n_items, seconds) -> Run:
    """One run's figures from its SearchResult: the selected sample's reward per latent, NFE per latent."""
    final = next(event for event in reversed(result.events) if event["type"] == "final")
    rewards = [float(row[pick]) for row, pick in zip(final["rewards"], final["selected"])]
    return Run(preset=preset, budget=int(budget), seed=int(seed), nfe_per_image=result.nfe / n_items,
               seconds=float(seconds), reward=sum(rewards) / len(rewards), rewards=rewards)
