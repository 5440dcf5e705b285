"""The experiment's methods as sampler nodes, at equal NFE: N particles x T steps of denoiser evaluations per latent.

SoP, DSearch and DSearch-R have their sources' settings (the node exposes only N), which cost far more than N·T per
particle (docs/search.md): they run N / 4 (SoP, DSearch-R) and N / 8 (DSearch) particles, at least one, and their rows
report the NFE they spent. Progressive seed pruning costs exactly N·T at N particles (T a multiple of 4, N even).
Local search with recurrence spends one extra NFE per guided step and particle, so it runs N / (1 + recur) particles;
its verifier gradients (x0 mode: through the VAE decoder and the classifier, not the UNet) are counted apart as
`grad_evals`. DFS gets the budget N·T and spends what its threshold asks for. Plain sampling is ComfyUI's own
euler_ancestral (the same ancestral step as the searches) at T NFE.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PRESETS = ("best_of_n", "fk", "das", "treeg", "svdd", "bfs", "sop", "dsearch", "dsearch_r", "seed_pruning")
OWN_COST = {"sop": 4, "dsearch_r": 4, "dsearch": 8}   # particles = N // this: the source's settings cost more


@dataclass(frozen=True)
class Settings:
    """Hyperparameters shared by every method of one run (the widgets' meaning, docs/nodes.md)."""

    steps: int = 8
    lam: float = 1.0                 # λ: weights ∝ exp(λ_t · log p(label | x0)); 1 = the class posterior's tilt
    resampling_steps: int = 4
    delta: float = -0.69             # DFS δ on log p(label): backtrack while p < 0.5
    backtrack_steps: int = 0         # DFS ΔT (0: the node's default, a quarter of the steps)
    check_from: int = -1             # DFS first checked step (-1: the node's default, half the steps)
    mu: float = 0.4                  # Langevin x0-space step (paper ImageNet: 0.4)
    langevin_steps: int = 1
    recur_steps: int = 1
    chunk_size: int = 32             # decode / gradient rows per call: fastest on CPU (cache), see docs/digits.md
    score_size: int = 0              # 0 or 64 (the image size): the same scoring, a different graph for the cache
    report_gain: bool = False        # local search: no extra verifier pass for the view (the search is the same)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Method:
    """One row of the tables: which node, which preset, local search or not, which verifier selects."""

    name: str
    kind: str                        # "plain" | "bfs" | "dfs" | "local"
    preset: str = "bfs"
    local: bool = False
    recur: bool = True               # local search with recurrence (else guidance only)
    dual: bool = False               # select with the selecting verifier (never the judge)
    label: str = ""
    extra: dict = field(default_factory=dict)

    def particles(self, n: int, settings: Settings) -> int:
        """Particles per latent that spend N·T NFE."""
        if self.kind in ("plain", "dfs"):
            return 1
        if self.preset in OWN_COST and self.kind == "bfs":
            return max(1, n // OWN_COST[self.preset])
        if self.local and self.recur:
            return max(1, n // (1 + settings.recur_steps))
        return n

    def same_as(self, n: int, settings: Settings) -> str | None:
        """The method whose run is this one's at N, if any: with one particle per latent, BFS + local search and dual
        verifiers (BFS + local) have nothing to resample or select, so they are local search (tests check it)."""
        if self.name != "local" and self.local and self.recur and self.particles(n, settings) == 1:
            return "local"
        return None

    def budget(self, n: int, settings: Settings) -> int:
        """The NFE per latent this method is allowed at N (plain: T, whatever N)."""
        return settings.steps if self.kind == "plain" else n * settings.steps


METHODS = {m.name: m for m in (
    Method("plain", "plain", label="plain sampling (euler_ancestral)"),
    Method("best_of_n", "bfs", "best_of_n", label="Best-of-N"),
    Method("fk", "bfs", "fk", label="FK-steering"),
    Method("das", "bfs", "das", label="DAS (w/o gradient)"),
    Method("treeg", "bfs", "treeg", label="TreeG"),
    Method("svdd", "bfs", "svdd", label="SVDD"),
    Method("bfs", "bfs", "bfs", label="BFS (paper)"),
    Method("sop", "bfs", "sop", label="SoP (search over paths; its own NFE)"),
    Method("dsearch", "bfs", "dsearch", label="DSearch (its own NFE)"),
    Method("dsearch_r", "bfs", "dsearch_r", label="DSearch-R (its own NFE)"),
    Method("seed_pruning", "bfs", "seed_pruning", label="progressive seed pruning"),
    Method("dfs", "dfs", label="DFS (backtracking)"),
    Method("local_guidance", "local", local=True, recur=False, label="local: guidance only (guide gradients)"),
    Method("local", "local", local=True, label="local: guidance + recurrence"),
    Method("bfs_local", "bfs", "bfs", local=True, label="BFS + local"),
    Method("dual", "bfs", "bfs", local=True, dual=True, label="BFS + local, dual verifiers"),
    Method("local_dual", "local", local=True, recur=False, dual=True,
           label="local: guidance only, dual verifiers"),
)}


def local_settings_node(method: Method, settings: Settings) -> dict:
    return {"class_type": "DiffusionSearchLocalSearchSettings", "inputs": {
        "gradient_mode": "x0", "langevin_steps": settings.langevin_steps,
        "recur_steps": settings.recur_steps if method.recur else 0, "mu": settings.mu, "rho": 0.2,
        "start_step": 0, "grad_clip": 0.0, "report_gain": settings.report_gain}}


def sampler_nodes(method: Method, n: int, settings: Settings, prompt: str) -> dict:
    """{node id: node} giving the SAMPLER at node 'sampler' (plus a 'local' settings node where needed)."""
    if method.kind == "plain":
        return {"sampler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}}}
    scoring = {"vae": ["vae", 0], "verifier": ["guide", 0], "prompt": prompt, "score_size": settings.score_size,
               "chunk_size": settings.chunk_size}
    if method.dual:
        scoring["select_verifier"] = ["select", 0]
    nodes = {}
    if method.local:
        nodes["local"] = local_settings_node(method, settings)
        scoring["local_search"] = ["local", 0]
    particles = method.particles(n, settings)
    if method.kind == "bfs":
        nodes["sampler"] = {"class_type": "DiffusionSearchBFSSampler", "inputs": {
            **scoring, "preset": method.preset, "particles": particles, "lam": settings.lam,
            "resampling_steps": settings.resampling_steps, "ess_threshold": 0.0, "temperature": "increase_paper",
            "scoring": "max", "resampling": "ssp"}}
    elif method.kind == "dfs":
        nodes["sampler"] = {"class_type": "DiffusionSearchDFSSampler", "inputs": {
            **scoring, "delta": settings.delta, "delta_schedule": "constant",
            "backtrack_steps": settings.backtrack_steps, "nfe_budget": method.budget(n, settings),
            "max_backtracks": -1, "check_from": settings.check_from}}
    elif method.kind == "local":
        nodes["sampler"] = {"class_type": "DiffusionSearchLocalSampler", "inputs": {**scoring,
                                                                                   "particles": particles}}
    else:
        raise ValueError(f"unknown method kind {method.kind!r}")
    return nodes


def search_graph(world, method: Method, n: int, settings: Settings, label: str, batch: int, cfg: float,
                 seed: int, key: str) -> dict:
    """The whole prompt: world loaders, the method's sampler in SamplerCustom, VAEDecode, capture of the images."""
    prompt = world.prompt(label)
    graph = world.base_graph(prompt, batch, settings.steps, world.canvas_width(label))
    if method.dual:
        graph["select"] = world.select.loader_node()
    graph.update(sampler_nodes(method, n, settings, prompt))
    graph["sample"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["unet", 0], "add_noise": True, "noise_seed": seed, "cfg": cfg, "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": ["sampler", 0], "sigmas": ["sched", 0], "latent_image": ["latent", 0]}}
    graph["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["vae", 0]}}
    graph["capture"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["decode", 0], "key": key}}
    if method.kind == "plain":
        del graph["guide"]   # nothing scores plain sampling inside the graph
    return graph
