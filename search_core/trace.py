"""The search trace: ``Trace`` (the event dicts of docs/design.md and what the search produced) and ``to_list``.

A sampler fills the ``Trace`` given as ``trace=``: its events as they happen (each also sent to ``on_event``, live) and,
at the end, the result fields. Lists are indexed ``[item][particle]``; a score that was not computed is ``None``
(JSON null). nodes/ forwards the events unchanged and web/ draws them.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

log = logging.getLogger(__name__)


def to_list(values) -> list:
    """Tensor / nested numbers -> nested lists of Python floats/ints, non-finite floats -> None."""
    if isinstance(values, torch.Tensor):
        values = values.detach()
        if values.is_floating_point() and not bool(torch.isfinite(values).all()):
            values = torch.where(torch.isfinite(values), values, torch.nan)
        else:
            return values.cpu().tolist()  # all finite: no per-element pass
        values = values.cpu().tolist()
    if isinstance(values, dict):
        return {k: to_list(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [to_list(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


@dataclass
class Trace:
    """One search's record (docs/design.md, "Trace"): its events, live to ``on_event``, and what it produced."""

    on_event: Callable[[dict], None] | None = field(default=None, repr=False, compare=False)  # each event, live
    events: list = field(default_factory=list)
    algorithm: str = ""
    samples: torch.Tensor | None = None        # [B, ...] the returned tensor
    particles: torch.Tensor | None = None      # [B, N, ...] final particles
    rewards: torch.Tensor | None = None        # [B, N] final rewards of the selecting verifier
    order: torch.Tensor | None = None          # [B, N] ranking, best first
    selected: torch.Tensor | None = None       # [B] index of the returned particle of each item
    nfe: int = 0                               # denoiser evaluations, every particle counted
    nfe_per_item: list = field(default_factory=list)
    grad_evals: int = 0                        # gradient evaluations of local search (per particle)
    denoiser_grad_evals: int = 0               # of which backpropagated through the denoiser (cost ~ 2 NFE each)
    score_evals: int = 0                       # verifier calls on x0 predictions (per particle)
    backtracks: list = field(default_factory=list)  # DFS: backtracks per item
    state: dict | None = None                  # what an extension resumes from (search_core/extend.py); None: none

    @classmethod
    def begin(cls, trace: "Trace | None", algorithm: str) -> "Trace":
        """The trace a sampler fills: the caller's ``trace`` (its events restart) or a new one when None."""
        if trace is None:
            trace = cls()
        elif not isinstance(trace, cls):
            raise ValueError(f"trace must be a search_core Trace (trace=Trace(), or Trace(on_event=send) for live "
                             f"events), got {type(trace).__name__}")
        trace.algorithm, trace.events = algorithm, []
        return trace

    def emit(self, event_type: str, **fields) -> dict:
        """Append the event ``{"type", "algorithm", **fields}`` (plain data) and send it to ``on_event``."""
        event = {"type": event_type, "algorithm": self.algorithm}
        for key, value in fields.items():
            if isinstance(value, float):
                event[key] = value if math.isfinite(value) else None
            elif isinstance(value, (int, str, bool, list)) or value is None:
                event[key] = value  # lists are built plain by the samplers (to_list or .tolist())
            else:
                event[key] = to_list(value)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def to_json(self) -> str:
        """The trace document ``{"version": 1, "events": [...]}``."""
        return json.dumps({"version": 1, "events": self.events})
