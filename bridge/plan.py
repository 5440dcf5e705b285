"""What a search node asks for: the algorithm, its settings and its scoring, validated when the node runs."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class ScoringSpec:
    """What the scoring path needs besides the model: decoder, verifiers, prompt and batching."""

    vae: Any
    guide_verifier: Any
    prompt: str = ""
    select_verifier: Any = None
    score_size: int = 0
    chunk_size: int = 8
    video: Any = None                    # video.VideoScoring: how video latents are scored (None: defaults)

    def validate(self) -> "ScoringSpec":
        if self.vae is None:
            raise ValueError("the search needs a VAE to score x0 predictions: connect the checkpoint's VAE "
                             "(or a TAESD VAE from VAELoader for cheap intermediate scores) to 'vae'")
        if not hasattr(self.vae, "first_stage_model"):
            raise ValueError(f"'vae' must be a ComfyUI VAE (from a checkpoint or VAELoader), got "
                             f"{type(self.vae).__name__}")
        if self.guide_verifier is None:
            raise ValueError("the search needs a verifier: connect a DiffusionSearch verifier loader")
        for name in ("guide_verifier", "select_verifier"):
            verifier = getattr(self, name)
            if verifier is not None and not callable(getattr(verifier, "score", None)):
                raise ValueError(f"'{name}' must be a SEARCH_VERIFIER, got {type(verifier).__name__}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        return self


@dataclasses.dataclass
class SearchPlan:
    """One search: which algorithm, its settings, its scoring, and where its events go."""

    algorithm: str                       # "bfs" | "dfs" | "local"
    scoring: ScoringSpec
    n_particles: int = 1
    bfs: Any = None                      # search_core.config.BFSConfig
    dfs: Any = None                      # search_core.config.DFSConfig
    local: Any = None                    # search_core.config.LangevinConfig (alone or attached)
    node_id: Any = None
    node_type: str | None = None         # the node's class_type, so the web view can tell nodes of one id apart
    reject_flow: bool = False            # options that only make sense for epsilon models
    reuse: bool = True                   # extend a kept search of the same inputs when the budget grew (kept.py)

    def validate(self) -> "SearchPlan":
        if self.algorithm not in ("bfs", "dfs", "local"):
            raise ValueError(f"unknown search algorithm {self.algorithm!r}: use bfs, dfs or local")
        if self.n_particles < 1:
            raise ValueError(f"particles must be at least 1, got {self.n_particles}: one particle is the plain "
                             "sampler, the paper uses 2 to 8")
        if self.algorithm == "local" and self.local is None:
            raise ValueError("local search needs Langevin settings")
        self.scoring.validate()
        if self.local is not None and self.local.steps > 0 and not getattr(
                self.scoring.guide_verifier, "differentiable", False):
            raise ValueError(f"local search climbs the guide verifier's gradient, but "
                             f"'{getattr(self.scoring.guide_verifier, 'name', '?')}' is not differentiable: connect "
                             "a differentiable guide verifier (use the other one as select_verifier)")
        return self

    def budget(self, n_steps: int) -> int:
        """The budget the artist raises: particles (BFS, local search) or NFE per latent (DFS, default 2 dives)."""
        if self.algorithm != "dfs":
            return int(self.n_particles)
        from ..search_core.dfs import dive_costs
        return int(self.dfs.nfe_budget or 2 * dive_costs(n_steps, self.local)[0])

    def extends_exactly(self) -> bool:
        """Whether extending gives exactly one run of the larger budget (Best-of-N, local search alone, DFS)."""
        from ..search_core.extend import is_exact_bfs
        from ..search_core.presets import get_preset
        if self.algorithm in ("dfs", "local"):
            return True
        return is_exact_bfs(self.bfs if self.bfs is not None else get_preset("bfs"))

    def search_function(self):
        """The search_core sampler of this plan (imported here: the pack must load even if search_core fails)."""
        if self.algorithm == "bfs":
            from ..search_core.bfs import sample_bfs
            return sample_bfs
        if self.algorithm == "dfs":
            from ..search_core.dfs import sample_dfs
            return sample_dfs
        from ..search_core.local import sample_local
        return sample_local

    def search_kwargs(self) -> dict:
        """The sampler's settings keywords (the budget excepted: the extension strategy sets it)."""
        if self.algorithm == "bfs":
            return dict(config=self.bfs, local=self.local)
        if self.algorithm == "dfs":
            return dict(config=self.dfs, local=self.local)
        return dict(config=self.local)
