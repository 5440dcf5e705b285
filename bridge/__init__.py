"""The bridge between the nodes and search_core (CONTRIBUTING.md, docs/design.md "bridge").

plan.py (what a node asks for) -> call.py (``bind``: a pure SearchCall; ``run``: a SearchOutcome) -> ksampler.py (the
SAMPLER ComfyUI runs). Beside them what a search needs of ComfyUI: compat (every version difference), memory (rows
per denoiser call, VAE / verifier residency), scoring (x0 -> decode -> verifier), events (to the browser), inpaint,
latents (input checks), video, and kept searches (state_key, search_state, kept). Only compat imports ComfyUI,
lazily: the bridge imports and binds without it.
"""
