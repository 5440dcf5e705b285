"""Forward search_core's trace events to the browser (PromptServer.send_sync), tagged with node and prompt ids."""
from __future__ import annotations

import logging

from . import compat

log = logging.getLogger(__name__)


class EventForwarder:
    """on_event for search_core samplers: tags each event (node, prompt_id, evaluations, scoring time), sends it."""

    def __init__(self, node_id, scorers=(), send=compat.send_event, check_interrupt=compat.check_interrupted,
                 send_text=compat.send_progress_text, node_type=None, run_info=None, prompt_id=None):
        self.node_id = None if node_id is None else str(node_id)
        self.node_type = node_type
        # What the run used besides search_core's config (verifier names, seed): added to the start event.
        self.run_info = dict(run_info or {})
        self.prompt_id = compat.current_prompt_id() if prompt_id is None else prompt_id
        self.scorers = [s for s in scorers if s is not None]
        self.send = send
        self.send_text = send_text
        self.check_interrupt = check_interrupt
        self.sent = 0
        self.n_steps = None

    def __call__(self, event: dict) -> None:
        # search_core's dict goes out unchanged apart from the added keys (docs/design.md, docs/nodes.md).
        message = dict(event)
        message["node"] = self.node_id
        message["node_type"] = self.node_type
        message["prompt_id"] = self.prompt_id
        if event.get("type") == "start":
            message.update(self.run_info)
        message["evaluations"] = sum(s.evaluations for s in self.scorers)
        message["scoring_seconds"] = round(sum(s.seconds for s in self.scorers), 6)
        self.send(message)
        self.sent += 1
        if event.get("type") == "start":
            self.n_steps = event.get("n_steps")
        elif event.get("type") in ("step", "backtrack", "final"):
            # The progress bar counts steps; the evaluations spent go on the node as text (where ComfyUI shows it).
            self.send_text(progress_text(event, message["evaluations"], self.n_steps), self.node_id)
        if event.get("type") in ("step", "final"):
            log.debug("search %s %s: nfe=%s evaluations=%s", event.get("algorithm"), event.get("type"),
                      event.get("nfe"), message["evaluations"])
        # Events come once per step (and per backtrack): checking here honours Cancel within one step.
        self.check_interrupt()


def progress_text(event: dict, evaluations: int, n_steps) -> str:
    """One line for the node: where the search is and what it has spent (denoiser evaluations, images scored)."""
    kind = event.get("type")
    where = {"final": "done", "backtrack": f"backtrack {event.get('step_from')} -> {event.get('step_to')}"}.get(
        kind, f"step {int(event.get('step', 0)) + 1}/{n_steps if n_steps is not None else '?'}")
    return f"{str(event.get('algorithm', 'search')).upper()} {where} · NFE {event.get('nfe')} · {evaluations} scored"
