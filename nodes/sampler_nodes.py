"""SAMPLER nodes for SamplerCustom / SamplerCustomAdvanced: BFS, DFS, local search, and local-search settings."""
from __future__ import annotations

from . import widgets
from ..bridge.ksampler import make_search_sampler
from ..bridge.plan import ScoringSpec, SearchPlan

HIDDEN = {"unique_id": "UNIQUE_ID"}


def _scoring(vae, verifier, prompt, score_size, chunk_size, select_verifier=None, video=None) -> ScoringSpec:
    return ScoringSpec(vae=vae, guide_verifier=verifier, prompt=prompt, select_verifier=select_verifier,
                       score_size=int(score_size), chunk_size=int(chunk_size),
                       video=widgets.video_scoring(**(video or {})))


def _local_or_none(local_search):
    if local_search is not None and not hasattr(local_search, "grad_mode"):
        raise ValueError("'local_search' must come from the DiffusionSearch Local Search Settings node")
    return local_search


class DiffusionSearchBFSSampler:
    """BFS over particles (paper Sec. 3.1): presets Best-of-N, FK, DAS, TreeG, SVDD, the paper's BFS, SoP, DSearch,
    DSearch-R, seed pruning, or custom."""

    DESCRIPTION = ("Breadth-first search: N particles per latent, scored by the verifier at resampling steps and "
                   "resampled by the chosen scheme. Plug into SamplerCustom's 'sampler'.")
    RETURN_TYPES = ("SAMPLER",)
    OUTPUT_TOOLTIPS = ("The search as a SAMPLER: connect it to SamplerCustom's (or SamplerCustomAdvanced's) "
                       "'sampler' input.",)
    FUNCTION = "build"
    CATEGORY = widgets.SEARCH_CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        required = {**widgets.scoring_inputs(), **widgets.bfs_inputs(), **widgets.scoring_options()}
        optional = {**widgets.optional_scoring_inputs(),
                    "local_search": (widgets.LOCAL_SEARCH_TYPE, {"tooltip": "Attach Langevin local search."})}
        return {"required": required, "optional": optional, "hidden": HIDDEN}

    @classmethod
    def VALIDATE_INPUTS(cls, lam=None, ess_threshold=None, temporal_weight=None):
        return widgets.validate_floats(cls, lam=lam, ess_threshold=ess_threshold, temporal_weight=temporal_weight)

    def build(self, vae, verifier, prompt, preset, particles, lam, resampling_steps, ess_threshold, temperature,
              scoring, resampling, score_size, chunk_size, select_verifier=None, local_search=None, unique_id=None,
              **video):
        widgets.check_floats(type(self), lam=lam, ess_threshold=ess_threshold)
        config = widgets.bfs_config(preset, lam, resampling_steps, ess_threshold, temperature, scoring, resampling)
        plan = SearchPlan("bfs", _scoring(vae, verifier, prompt, score_size, chunk_size, select_verifier, video),
                          n_particles=int(particles), bfs=config, local=_local_or_none(local_search),
                          node_id=unique_id, node_type=type(self).__name__)
        return (make_search_sampler(plan),)


class DiffusionSearchDFSSampler:
    """DFS with backtracking (paper Sec. 3.2): dive, re-noise ΔT steps up when the score drops below δ_t."""

    DESCRIPTION = ("Depth-first search: one particle dives; when its score is below δ_t it backtracks ΔT steps "
                   "(forward-noising) and retries, until the NFE budget is spent.")
    RETURN_TYPES = ("SAMPLER",)
    OUTPUT_TOOLTIPS = ("The search as a SAMPLER: connect it to SamplerCustom's (or SamplerCustomAdvanced's) "
                       "'sampler' input.",)
    FUNCTION = "build"
    CATEGORY = widgets.SEARCH_CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        required = {**widgets.scoring_inputs(), **widgets.dfs_inputs(), **widgets.scoring_options()}
        optional = {**widgets.optional_scoring_inputs(),
                    "local_search": (widgets.LOCAL_SEARCH_TYPE, {"tooltip": "Attach Langevin local search."})}
        return {"required": required, "optional": optional, "hidden": HIDDEN}

    @classmethod
    def VALIDATE_INPUTS(cls, delta=None, temporal_weight=None):
        return widgets.validate_floats(cls, delta=delta, temporal_weight=temporal_weight)

    def build(self, vae, verifier, prompt, delta, delta_schedule, backtrack_steps, nfe_budget, max_backtracks,
              check_from, score_size, chunk_size, select_verifier=None, local_search=None, unique_id=None, **video):
        widgets.check_floats(type(self), delta=delta)
        config = widgets.dfs_config(delta, delta_schedule, backtrack_steps, nfe_budget, max_backtracks, check_from)
        plan = SearchPlan("dfs", _scoring(vae, verifier, prompt, score_size, chunk_size, select_verifier, video),
                          dfs=config, local=_local_or_none(local_search), node_id=unique_id,
                          node_type=type(self).__name__,
                          reject_flow=config.delta_schedule == "alpha_scaled")
        return (make_search_sampler(plan),)


class DiffusionSearchLocalSearchSettings:
    """Annealed Langevin local search settings (paper Sec. 3.3, Prop. 1) to attach to a BFS or DFS sampler."""

    DESCRIPTION = "Langevin local search = verifier-gradient guidance + recurrence; attach to BFS/DFS or use alone."
    RETURN_TYPES = (widgets.LOCAL_SEARCH_TYPE,)
    RETURN_NAMES = ("local_search",)
    OUTPUT_TOOLTIPS = ("Langevin settings: connect to the 'local_search' input of a BFS / DFS sampler, KSampler "
                       "(Search) or the Local Search Sampler.",)
    FUNCTION = "build"
    CATEGORY = widgets.SEARCH_CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": widgets.local_inputs(), "optional": widgets.local_options()}

    @classmethod
    def VALIDATE_INPUTS(cls, mu=None, rho=None, grad_clip=None):
        return widgets.validate_floats(cls, mu=mu, rho=rho, grad_clip=grad_clip)

    def build(self, **settings):
        widgets.check_floats(type(self), **{k: settings.get(k) for k in ("mu", "rho", "grad_clip")})
        return (widgets.local_config(**settings),)


class DiffusionSearchLocalSampler:
    """Local search alone: every particle follows guided, recurrent Langevin steps (no resampling)."""

    DESCRIPTION = "Langevin local search on its own as a SAMPLER (guidance + recurrence, paper Prop. 1)."
    RETURN_TYPES = ("SAMPLER",)
    OUTPUT_TOOLTIPS = ("The search as a SAMPLER: connect it to SamplerCustom's (or SamplerCustomAdvanced's) "
                       "'sampler' input.",)
    FUNCTION = "build"
    CATEGORY = widgets.SEARCH_CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        required = {**widgets.scoring_inputs(),
                    "local_search": (widgets.LOCAL_SEARCH_TYPE, {"tooltip": "From Local Search Settings."}),
                    "particles": ("INT", {"default": 1, "min": 1, "max": 256,
                                          "tooltip": "Independent particles; the selecting verifier picks one. "
                                                     "Raising it and queueing again runs only the new particles "
                                                     "(the same result as one run of the new count)."}),
                    **widgets.scoring_options()}
        return {"required": required, "optional": widgets.optional_scoring_inputs(), "hidden": HIDDEN}

    @classmethod
    def VALIDATE_INPUTS(cls, temporal_weight=None):
        return widgets.validate_floats(cls, temporal_weight=temporal_weight)

    def build(self, vae, verifier, prompt, local_search, particles, score_size, chunk_size, select_verifier=None,
              unique_id=None, **video):
        if local_search is None:
            raise ValueError("connect a Local Search Settings node to 'local_search'")
        plan = SearchPlan("local", _scoring(vae, verifier, prompt, score_size, chunk_size, select_verifier, video),
                          n_particles=int(particles), local=_local_or_none(local_search), node_id=unique_id,
                          node_type=type(self).__name__)
        return (make_search_sampler(plan),)
