"""Turn a ComfyUI UI-format workflow (what the editor saves and example_workflows/ holds) into an API-format prompt.

The editor stores widget values as a list in INPUT_TYPES order (with an extra control_after_generate entry after
seed-like INT widgets) and connections as a links table; the executor wants {id: {class_type, inputs}}.
"""
from __future__ import annotations

SEED_CONTROLS = {"fixed", "increment", "decrement", "randomize"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
MUTED, BYPASSED = 2, 4


def _is_widget(spec) -> bool:
    kind = spec[0] if isinstance(spec, (tuple, list)) else spec
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES or kind == "COMBO"


def _ordered_inputs(node_class) -> list[tuple[str, tuple]]:
    types = node_class.INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            out.append((name, spec if isinstance(spec, (tuple, list)) else (spec,)))
    return out


def widget_values(node: dict, node_class) -> dict:
    """Map a UI node's widgets_values onto input names."""
    values = node.get("widgets_values") or []
    if isinstance(values, dict):
        return dict(values)
    named, i = {}, 0
    for name, spec in _ordered_inputs(node_class):
        if not _is_widget(spec) or i >= len(values):
            continue
        named[name] = values[i]
        i += 1
        if spec[0] == "INT" and i < len(values) and isinstance(values[i], str) and values[i] in SEED_CONTROLS:
            i += 1  # the frontend's control_after_generate value is stored right after its INT widget
    return named


def ui_to_api(workflow: dict, node_classes: dict) -> dict:
    """Convert a UI-format workflow to an API-format prompt; unknown node types raise with the type's name."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow.get("links", [])}

    def source(link_id):
        """Follow Reroute nodes back to the real producing node and slot."""
        _, from_id, from_slot, *_ = links[link_id]
        node = nodes[from_id]
        while node["type"] == "Reroute":
            upstream = node["inputs"][0].get("link")
            if upstream is None:
                return None
            _, from_id, from_slot, *_ = links[upstream]
            node = nodes[from_id]
        return node, from_slot

    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in ("Reroute", "Note", "MarkdownNote", "PrimitiveNode") or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        if kind not in node_classes:
            raise KeyError(f"Workflow node {node['id']} has type {kind!r}, which this ComfyUI does not know: "
                           "install the custom node that provides it.")
        inputs = widget_values(node, node_classes[kind])
        for inp in node.get("inputs") or []:
            if inp.get("link") is None:
                continue
            found = source(inp["link"])
            if found is None:
                continue
            src, slot = found
            if src["type"] == "PrimitiveNode":
                inputs[inp["name"]] = src["widgets_values"][0]
            else:
                inputs[inp["name"]] = [str(src["id"]), slot]
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt
