"""search_core: inference-time search for diffusion models in plain torch (no ComfyUI import).

Paper: "Inference-Time Scaling of Diffusion Models Through Classical Search" (ICLR 2026). Public API
(contract: docs/design.md; user guide: docs/search.md):

- ``bfs.sample_bfs``, ``dfs.sample_dfs``, ``local.sample_local``: samplers with k-diffusion's signature
  ``fn(model, x, sigmas, extra_args=None, callback=None, disable=None, **options) -> [B, ...]``.
- ``config.BFSConfig`` / ``DFSConfig`` / ``LangevinConfig``; ``presets.PRESETS`` (best_of_n, fk, das, treeg, svdd, bfs);
  ``presets.BASELINES`` (sop, dsearch, dsearch_r, seed_pruning: ``SoPConfig`` / ``BeamConfig``, run by ``sample_bfs``
  through ``sop.sample_sop`` / ``beam.sample_beam``).
- ``trace.Trace`` (``trace=``: the events, live to its ``on_event``, and what the search produced);
  ``streams.ParticleStreams`` (``generator=`` takes one: per-particle noise, for extension); ``resampling`` (pure
  functions on log-weights); ``noise`` (both noise forms, ancestral step, forward kernel); ``chunking.run_chunked``;
  ``testbed`` (exact Gaussian-mixture testbed).
"""
from .bfs import sample_bfs
from .config import BeamConfig, BFSConfig, DFSConfig, LangevinConfig, SoPConfig
from .dfs import sample_dfs
from .local import sample_local
from .presets import BASELINES, PRESETS, get_preset
from .streams import ParticleStreams
from .trace import Trace

__all__ = ["sample_bfs", "sample_dfs", "sample_local", "BFSConfig", "DFSConfig", "LangevinConfig", "SoPConfig",
           "BeamConfig", "PRESETS", "BASELINES", "get_preset", "Trace",
           "ParticleStreams"]
