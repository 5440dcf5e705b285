"""Every input of every node of the pack has a tooltip, and every node describes its outputs (OUTPUT_TOOLTIPS)."""


def _inputs(cls):
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            yield name, spec


def test_every_input_and_output_of_every_node_has_a_tooltip(comfy):
    mappings = comfy.pack.NODE_CLASS_MAPPINGS
    assert len(mappings) >= 10
    missing_inputs, missing_outputs = [], []
    for node_id, cls in mappings.items():
        for name, spec in _inputs(cls):
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if not str(options.get("tooltip", "")).strip():
                missing_inputs.append(f"{node_id}.{name}")
        tooltips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        if (not isinstance(tooltips, tuple) or len(tooltips) != len(cls.RETURN_TYPES)
                or not all(str(t).strip() for t in tooltips)):
            missing_outputs.append(node_id)
    assert not missing_inputs, f"inputs without a tooltip: {missing_inputs}"
    assert not missing_outputs, f"nodes without one OUTPUT_TOOLTIPS entry per output: {missing_outputs}"
