"""Forward search_core's trace events to the browser (PromptServer.send_sync), tagged with node and prompt ids."""
from __future__ import annotations

import logging

from . import compat

log = logging.getLogger(__name__)


class EventForwarder:
    """on_event for search_core samplers: tags each event (node, prompt_id, evaluations, scoring time), sends it."""

    def __init__(self, node_id, scorers=(), send=compat.send_event, check_interrupt=compat.check_interrupted):
        self.node_id = None if node_id is None else str(node_id)
        self.prompt_id = compat.current_prompt_id()
        self.scorers = [s for s in scorers if s is not None]
        self.send = send
        self.check_interrupt = check_interrupt
        self.sent = 0

    def __call__(self, event: dict) -> None:
        # search_core's dict goes out unchanged apart from the added keys (docs/design.md, docs/nodes.md).
        message = dict(event)
        message["node"] = self.node_id
        message["prompt_id"] = self.prompt_id
        message["evaluations"] = sum(s.evaluations for s in self.scorers)
        message["scoring_seconds"] = round(sum(s.seconds for s in self.scorers), 6)
        self.send(message)
        self.sent += 1
        if event.get("type") in ("step", "final"):
            log.debug("search %s %s: nfe=%s evaluations=%s", event.get("algorithm"), event.get("type"),
                      event.get("nfe"), message["evaluations"])
        # Events come once per step (and per backtrack): checking here honours Cancel within one step.
        self.check_interrupt()
