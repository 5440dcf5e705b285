"""Search Budget Explorer: run presets at several budgets over seeds and plot reward against compute.

Each run is KSampler (Search)'s own path (`search_ksampler.run_search` with the plan its `_plan` builds), so the
explorer measures exactly what the artist would get from that node at that setting.
"""
from __future__ import annotations

import json
import logging
import time

from . import widgets
from ..bridge import compat
from .budget_report import Run, markdown_table, plot_image
from .search_ksampler import DFS, _latent_samples, _plan, run_search
from ..bridge.plan import ScoringSpec

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


SEED_MAX = 0xFFFFFFFFFFFFFFFF   # ComfyUI's seed range (KSampler's seed widget): 64 bits


def check_plan(names: list[str] | None, sizes: list[int] | None, steps=None, seed=None, seeds=None) -> None:
    """Refuse, before the first run, an exploration whose later runs would fail: budgets beyond what KSampler
    (Search) accepts, seeds past ComfyUI's seed range, too many runs. What is None (a link) is checked at run time."""
    particles_max = int(widgets.bfs_inputs()["particles"][1]["max"])
    nfe_max = int(widgets.dfs_inputs()["nfe_budget"][1]["max"])
    if names is not None and sizes is not None:
        if any(name != DFS for name in names) and sizes[-1] > particles_max:
            raise ValueError(f"'budgets' has {sizes[-1]}, but a BFS preset runs at most {particles_max} particles "
                             f"(the particles widget's range): list budgets from 1 to {particles_max}")
        if DFS in names and steps is not None and sizes[-1] * int(steps) > nfe_max:
            raise ValueError(f"'budgets' has {sizes[-1]}: dfs would get an NFE budget of {sizes[-1]} x {int(steps)} "
                             f"steps = {sizes[-1] * int(steps)}, above the {nfe_max} DFS accepts: list budgets up "
                             f"to {nfe_max // int(steps)} for dfs at {int(steps)} steps")
        if seeds is not None and len(names) * len(sizes) * int(seeds) > MAX_RUNS:
            raise ValueError(f"{len(names) * len(sizes) * int(seeds)} runs planned (presets x budgets x seeds); at "
                             f"most {MAX_RUNS}: drop some")
    if seed is not None and seeds is not None and not 0 <= int(seed) <= SEED_MAX - (int(seeds) - 1):
        raise ValueError(f"'seed' {int(seed)} with {int(seeds)} seeds runs seeds up to {int(seed) + int(seeds) - 1}, "
                         f"outside ComfyUI's seed range [0, {SEED_MAX}]: set seed to at most "
                         f"{SEED_MAX - (int(seeds) - 1)}")


class DiffusionSearchBudgetExplorer:
    """Runs presets x budgets x seeds with KSampler (Search)'s path; outputs a reward-vs-compute plot and a table."""

    DESCRIPTION = ("Which preset and budget should I use? Runs each preset at each budget (BFS presets: particles "
                   "N; dfs: NFE budget = budget x steps) over several seeds on this model, prompt and verifier, and "
                   "plots the selected sample's reward against NFE and seconds (mean ± s.e. over seeds). Cancel, or "
                   "an error in a later run (e.g. out of memory at a large budget), keeps the runs that finished: the "
                   "plot and table of those are returned and saved.")
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
                        temporal_weight=None, steps=None, seed=None, seeds=None, filename_prefix=None):
        try:  # linked inputs arrive as None here: explore() checks them again when it runs
            required = cls.INPUT_TYPES()["required"]
            for name, value in (("steps", steps), ("seed", seed), ("seeds", seeds)):
                low, high = required[name][1]["min"], required[name][1]["max"]
                if value is not None and not low <= int(value) <= high:   # modern ComfyUI leaves it to us here
                    raise ValueError(f"{name} = {value} is out of range: set a whole number in [{low}, {high}]")
            names = parse_presets(presets) if presets is not None else None
            sizes = parse_budgets(budgets) if budgets is not None else None
            check_plan(names, sizes, steps, seed, seeds)
            if filename_prefix is not None:
                compat.check_output_prefix(filename_prefix or "budget_explorer")
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
        check_plan(names, sizes, steps, seed, seeds)
        prefix = filename_prefix or "budget_explorer"
        compat.check_output_prefix(prefix)
        n_items = _latent_samples(latent_image).shape[0]
        scoring = ScoringSpec(vae=vae, guide_verifier=verifier, prompt=prompt, select_verifier=select_verifier,
                              score_size=int(score_size), chunk_size=int(chunk_size),
                              video=widgets.video_scoring(**video)).validate()
        # Cheapest first, so a cancelled exploration keeps every preset at the small budgets; within a budget the
        # presets take turns seed by seed, so a busy spell of the machine does not land on one preset's seconds.
        jobs = [(name, size, int(seed) + k) for size in sizes for k in range(int(seeds)) for name in names]
        plans = {(name, size): _plan(name, scoring, size, lam, resampling_steps, delta, backtrack_steps,
                                     size * int(steps), local_search, unique_id) for name in names for size in sizes}
        for plan in plans.values():
            plan.reuse = False   # each budget is measured as one whole run, not as an extension of a smaller one
            plan.validate()
        stem = self._claim_files(prefix, len(jobs))   # a prefix that cannot be written fails now, not after the runs
        bar = compat.progress_bar(len(jobs) * int(steps), unique_id)
        compat.load_models_to_device([model])   # model loading is not charged to the first run's seconds
        runs, cancelled, failure = [], False, None
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
                runs.append(_record(name, size, run_seed, outcome.trace, n_items, time.perf_counter() - started))
            except compat.interrupt_exception():
                cancelled = True
                log.warning("budget explorer cancelled after %d of %d runs; returning those", len(runs), len(jobs))
                break
            except Exception as error:   # noqa: BLE001 - out of memory at a large budget, a verifier fault, ...
                if not runs:
                    raise   # nothing finished to keep: the error itself is the answer
                failure = f"{type(error).__name__}: {error}"
                log.exception("budget explorer: run %d of %d (%s, budget %d, seed %d) failed; returning the %d "
                              "that finished", index + 1, len(jobs), name, size, run_seed, len(runs))
                break
        return self._outputs(runs, len(jobs), verifier, select_verifier, cancelled, stem, failure)

    @staticmethod
    def _claim_files(prefix: str, planned: int) -> str:
        """The output stem, with a placeholder table written there: refuses an unwritable prefix before any run."""
        try:
            stem = compat.output_stem(prefix)
            with open(f"{stem}.md", "w", encoding="utf-8") as handle:
                handle.write(f"## Search budget explorer: {planned} runs under way\n")
        except (OSError, ValueError) as error:
            raise ValueError(f"'filename_prefix' {prefix!r}: the table cannot be saved in ComfyUI's output folder "
                             f"({error}); use a plain name such as 'budget_explorer'") from None
        return stem

    def _outputs(self, runs, planned, verifier, select_verifier, cancelled, stem, failure=None):
        name = getattr(select_verifier or verifier, "name", type(verifier).__name__)
        table = markdown_table(runs, planned, name, cancelled, failure)
        document = json.dumps({"version": 1, "verifier": name, "planned": planned, "cancelled": cancelled,
                               "error": failure, "runs": [run.to_dict() for run in runs]})
        try:   # the runs are returned even if the disk refuses them now
            for extension, text in (("md", table), ("json", document)):
                with open(f"{stem}.{extension}", "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            log.info("budget explorer: %d of %d runs; table saved as %s.md", len(runs), planned, stem)
        except OSError as error:
            log.warning("budget explorer: could not save the table and runs as %s.md/.json (%s); they are in the "
                        "node's outputs", stem, error)
        stopped = "cancelled" if cancelled else "stopped by an error" if failure else None
        title = f"reward ({name}) vs compute" + (f" - {stopped} after {len(runs)} of {planned} runs" if stopped
                                                 else "")
        plot = plot_image(runs, title)
        return {"ui": {"text": [table]}, "result": (plot, table, document)}


def _record(preset, budget, seed, trace, n_items, seconds) -> Run:
    """One run's figures from its Trace: the selected sample's reward per latent, NFE per latent."""
    final = next(event for event in reversed(trace.events) if event["type"] == "final")
    rewards = [float(row[pick]) for row, pick in zip(final["rewards"], final["selected"])]
    return Run(preset=preset, budget=int(budget), seed=int(seed), nfe_per_image=trace.nfe / n_items,
               seconds=float(seconds), reward=sum(rewards) / len(rewards), rewards=rewards)
