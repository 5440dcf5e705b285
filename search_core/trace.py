"""The search trace: ``SearchResult`` and the event dicts of docs/design.md (plain JSON-serialisable data).

Events are emitted live through ``on_event`` and collected in ``SearchResult.events``; nodes/ forwards them unchanged
and web/ draws them. Lists are indexed ``[item][particle]``; a score that was not computed is ``None`` (JSON null).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field

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
class SearchResult:
    """What a search produced beyond the returned samples (docs/design.md, "SearchResult")."""

    samples: torch.Tensor | None = None        # [B, ...] the returned tensor
    particles: torch.Tensor | None = None      # [B, N, ...] final particles
    rewards: torch.Tensor | None = None        # [B, N] final rewards of the selecting verifier
    order: torch.Tensor | None = None          # [B, N] ranking, best first
    nfe: int = 0                               # denoiser evaluations, every particle counted
    nfe_per_item: list = field(default_factory=list)
    events: list = field(default_factory=list)
    grad_evals: int = 0                        # gradient evaluations of local search (per particle)
    denoiser_grad_evals: int = 0               # of which backpropagated through the denoiser (cost ~ 2 NFE each)
    score_evals: int = 0                       # verifier calls on x0 predictions (per particle)
    backtracks: list = field(default_factory=list)  # DFS: backtracks per item
    algorithm: str = ""
    selected: torch.Tensor | None = None      # [B] index of the returned particle of each item
    state: dict | None = None                  # what an extension resumes from (search_core/extend.py); None: none

    def to_json(self) -> str:
        """The trace document ``{"version": 1, "events": [...]}``."""
        return json.dumps({"version": 1, "events": self.events})


class Trace:
    """Collects events into a SearchResult and forwards each to ``on_event`` as it happens."""

    def __init__(self, algorithm: str, result: SearchResult | None, on_event=None):
        self.algorithm = algorithm
        self.result = result if result is not None else SearchResult()
        self.result.algorithm = algorithm
        self.result.events = []
        self.on_event = on_event

    @classmethod
    def continuing(cls, result: SearchResult, on_event=None) -> "Trace":
        """A trace that appends to a finished ``result``'s events (an extension's ``extend`` event after ``final``)."""
        trace = cls.__new__(cls)
        trace.algorithm, trace.result, trace.on_event = result.algorithm, result, on_event
        return trace

    def emit(self, event_type: str, **fields) -> dict:
        event = {"type": event_type, "algorithm": self.algorithm}
        for key, value in fields.items():
            if isinstance(value, float):
                event[key] = value if math.isfinite(value) else None
            elif isinstance(value, (int, str, bool, list)) or value is None:
                event[key] = value  # lists are built plain by the samplers (to_list or .tolist())
            else:
                event[key] = to_list(value)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return event
