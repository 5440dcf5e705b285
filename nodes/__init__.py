"""ComfyUI adapters of the pack (classic node API, loads in the 2024 snapshot and modern ComfyUI)."""
from .budget_explorer import DiffusionSearchBudgetExplorer
from .digits_conditioning import DiffusionSearchDigitsConditioning
from .rank_node import DiffusionSearchRankImages
from .sampler_nodes import (DiffusionSearchBFSSampler, DiffusionSearchDFSSampler, DiffusionSearchLocalSampler,
                            DiffusionSearchLocalSearchSettings)
from .search_ksampler import DiffusionSearchKSampler
from .verifier_nodes import DiffusionSearchCombineVerifiers, loader_nodes

_SEARCH_NODES = {
    "DiffusionSearchBFSSampler": (DiffusionSearchBFSSampler, "BFS Search Sampler"),
    "DiffusionSearchDFSSampler": (DiffusionSearchDFSSampler, "DFS Search Sampler (backtracking)"),
    "DiffusionSearchLocalSampler": (DiffusionSearchLocalSampler, "Local Search Sampler (Langevin)"),
    "DiffusionSearchLocalSearchSettings": (DiffusionSearchLocalSearchSettings, "Local Search Settings (Langevin)"),
    "DiffusionSearchKSampler": (DiffusionSearchKSampler, "KSampler (Search)"),
    "DiffusionSearchRankImages": (DiffusionSearchRankImages, "Rank Images by Verifier"),
    "DiffusionSearchCombineVerifiers": (DiffusionSearchCombineVerifiers, "Combine Verifiers"),
    "DiffusionSearchBudgetExplorer": (DiffusionSearchBudgetExplorer, "Search Budget Explorer"),
    "DiffusionSearchDigitsConditioning": (DiffusionSearchDigitsConditioning, "Digits Conditioning"),
}

NODE_CLASS_MAPPINGS = {node_id: cls for node_id, (cls, _) in _SEARCH_NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, (_, name) in _SEARCH_NODES.items()}

for _node_id, _cls in loader_nodes().items():
    NODE_CLASS_MAPPINGS[_node_id] = _cls
    NODE_DISPLAY_NAME_MAPPINGS[_node_id] = getattr(_cls, "DISPLAY_NAME", "Load Verifier: " + _cls.SPEC_NAME)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
