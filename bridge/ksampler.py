"""The SAMPLER a search node outputs: a k-diffusion-signature function for comfy.samplers.KSAMPLER that binds the
plan to ComfyUI's sampling inputs and runs it (call.py)."""
from __future__ import annotations

from typing import Callable

from . import compat
from .call import SearchOutcome, bind, run
from .plan import SearchPlan


def make_sampler_function(plan: SearchPlan, on_outcome: Callable[[SearchOutcome], None] | None = None):
    """The KSAMPLER function of ``plan``; each run's SearchOutcome goes to ``on_outcome`` (the all-in-one node's
    outputs), its samples back to ComfyUI."""
    plan.validate()   # now, so a bad setting fails the node that set it, not the sampling node

    def sample_search(model, x, sigmas, extra_args=None, callback=None, disable=None, **_options):
        outcome = run(bind(plan, model, x, sigmas, extra_args, callback, disable))
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome.samples

    return sample_search


def make_search_sampler(plan: SearchPlan, on_outcome: Callable[[SearchOutcome], None] | None = None):
    """The SAMPLER object (comfy.samplers.KSAMPLER) for SamplerCustom / SamplerCustomAdvanced."""
    return compat.make_ksampler(make_sampler_function(plan, on_outcome), {})
