"""Diffusion search for ComfyUI: spend inference compute, guided by reward models, to find better images.

Implements "Inference-Time Scaling of Diffusion Models Through Classical Search" (ICLR 2026): BFS over particles,
DFS with backtracking, Langevin local search and dual verifiers. Only the node adapters load here; the search engine
(`search_core`) and the reward models (`verifiers`) are plain torch libraries, imported by the nodes when they run.
"""
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # Imported as a bare module, not as ComfyUI's package: pytest does this to the checkout's __init__.py when the
    # folder's name is not a Python identifier (e.g. "comfyui-diffusion-search"). There are no nodes to offer then.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
