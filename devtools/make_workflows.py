"""Regenerate the example workflows (UI format), their preview PNGs and JPEG thumbnails:
`python -m devtools.make_workflows [NAME...]` (or `./run tool make_workflows`).

The video workflow (Wan 2.1) needs a modern ComfyUI (COMFYUI_PATH). budget_explorer's picture comes from the
learned numbers world (WORLD_PICTURES), not the tiny model.

Widget order comes from the live node classes of a real ComfyUI (the harness), so widgets_values always match
INPUT_TYPES. The PNG beside each workflow is the tiny random-weight model's result of that workflow (noise-like: the
model is untrained) with the workflow embedded, so dropping the PNG on ComfyUI loads the graph; the same-name JPEG is
the thumbnail modern ComfyUI's template browser asks for.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

WORKFLOW_DIR = Path(__file__).resolve().parents[1] / "example_workflows"
SEED_WIDGETS = {"seed", "noise_seed"}
CKPT = "v1-5-pruned-emaonly.safetensors"
WIDGET_KINDS = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, (list, tuple)) or kind in WIDGET_KINDS


class Builder:
    """Collects nodes ({id, type, widgets, inputs: {name: (node, slot)}}) and writes the UI-format JSON."""

    def __init__(self, node_classes):
        self.node_classes = node_classes
        self.nodes = []

    def add(self, kind, pos, widgets=None, size=(320, 260), **links):
        node = {"id": len(self.nodes) + 1, "type": kind, "pos": list(pos), "widgets": widgets or {}, "links": links,
                "size": list(size)}
        self.nodes.append(node)
        return node["id"]

    def to_ui(self) -> dict:
        ui_nodes, ui_links = [], []
        outputs = {n["id"]: {} for n in self.nodes}
        for node in self.nodes:
            cls = self.node_classes[node["type"]]
            types = cls.INPUT_TYPES()
            ordered = [(name, spec) for section in ("required", "optional")
                       for name, spec in (types.get(section) or {}).items()]
            inputs, widgets_values = [], []
            for name, spec in ordered:
                if name in node["links"]:
                    source, slot = node["links"][name]
                    link_id = len(ui_links) + 1
                    source_type = self.node_classes[self._type(source)].RETURN_TYPES[slot]
                    ui_links.append([link_id, source, slot, node["id"], len(inputs), source_type])
                    outputs[source].setdefault(slot, []).append(link_id)
                    entry = {"name": name, "type": source_type, "link": link_id}
                    if _is_widget(spec):
                        entry["widget"] = {"name": name}
                    inputs.append(entry)
                    if _is_widget(spec):
                        widgets_values.append(self._default(spec))
                        if name in SEED_WIDGETS:
                            widgets_values.append("fixed")
                    continue
                if not _is_widget(spec):
                    if name in (types.get("required") or {}):
                        raise ValueError(f"node {node['id']} ({node['type']}): required input {name} is not linked")
                    # unlinked optional sockets are listed too: the editor rebuilds a node's slots from this list
                    inputs.append({"name": name, "type": spec[0], "link": None})
                    continue
                widgets_values.append(node["widgets"].get(name, self._default(spec)))
                if name in SEED_WIDGETS:
                    widgets_values.append("fixed")  # the frontend's control_after_generate value
            ui_nodes.append({"id": node["id"], "type": node["type"], "pos": node["pos"], "size": node["size"],
                             "flags": {}, "order": node["id"] - 1, "mode": 0, "inputs": inputs,
                             "properties": {"Node name for S&R": node["type"]}, "widgets_values": widgets_values,
                             "_cls": cls})
        for ui in ui_nodes:
            cls = ui.pop("_cls")
            names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
            ui["outputs"] = [{"name": name, "type": kind, "links": outputs[ui["id"]].get(slot, []),
                              "slot_index": slot} for slot, (name, kind) in enumerate(zip(names, cls.RETURN_TYPES))]
        return {"last_node_id": len(ui_nodes), "last_link_id": len(ui_links), "nodes": ui_nodes, "links": ui_links,
                "groups": [], "config": {}, "extra": {}, "version": 0.4}

    def _type(self, node_id):
        return self.nodes[node_id - 1]["type"]

    @staticmethod
    def _default(spec):
        kind = spec[0]
        options = spec[1] if len(spec) > 1 else {}
        if isinstance(kind, (list, tuple)):
            return options.get("default", kind[0] if kind else "")
        return options.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])


PROMPT = "a red apple on a green table"


def _base(b, batch=1, size=512, latent=True, sched=True):
    """Checkpoint, prompts, empty latent, the demo-safe verifier (no download), a scheduler."""
    ids = {"ckpt": b.add("CheckpointLoaderSimple", (0, 0), {"ckpt_name": CKPT}, size=(320, 120))}
    ids["pos"] = b.add("CLIPTextEncode", (380, 0), {"text": PROMPT}, size=(320, 160), clip=(ids["ckpt"], 1))
    ids["neg"] = b.add("CLIPTextEncode", (380, 230), {"text": "blurry, low quality"}, size=(320, 160),
                       clip=(ids["ckpt"], 1))
    if latent:
        ids["latent"] = b.add("EmptyLatentImage", (0, 190), {"width": size, "height": size, "batch_size": batch},
                              size=(320, 130))
    ids["ver"] = b.add("DiffusionSearchVerifierPromptColour", (0, 390), {"device": "auto"}, size=(320, 130))
    if sched:
        ids["sched"] = b.add("BasicScheduler", (380, 460), {"scheduler": "normal", "steps": 30, "denoise": 1.0},
                             size=(320, 130), model=(ids["ckpt"], 0))
    return ids


def _sample_and_save(b, ids, sampler, x, prefix, seed=42):
    sc = b.add("SamplerCustom", (x, 0), {"add_noise": True, "noise_seed": seed, "cfg": 7.0}, model=(ids["ckpt"], 0),
               positive=(ids["pos"], 0), negative=(ids["neg"], 0), sampler=(sampler, 0), sigmas=(ids["sched"], 0),
               latent_image=(ids["latent"], 0))
    dec = b.add("VAEDecode", (x, 420), samples=(sc, 0), vae=(ids["ckpt"], 2))
    b.add("SaveImage", (x, 560), {"filename_prefix": prefix}, images=(dec, 0))


def _bfs(b, ids, pos, preset):
    return b.add("DiffusionSearchBFSSampler", pos, {"prompt": PROMPT, "preset": preset, "particles": 4},
                 vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0))


def bfs_search(b):
    ids = _base(b)
    _sample_and_save(b, ids, _bfs(b, ids, (720, 300), "bfs"), 1080, "search/bfs")


def bfs_presets_side_by_side(b):
    ids = _base(b)
    for column, preset in enumerate(("best_of_n", "fk", "das", "bfs")):
        x = 720 + 360 * column
        _sample_and_save(b, ids, _bfs(b, ids, (x, 800), preset), x, f"search/{preset}")


def dfs_backtracking(b):
    ids = _base(b)
    dfs = b.add("DiffusionSearchDFSSampler", (720, 300),
                {"prompt": PROMPT, "delta": -20.0, "backtrack_steps": 8, "nfe_budget": 60},
                vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0))
    _sample_and_save(b, ids, dfs, 1080, "search/dfs")


def local_search(b):
    ids = _base(b)
    settings = b.add("DiffusionSearchLocalSearchSettings", (720, 0),
                     {"gradient_mode": "x0", "langevin_steps": 1, "recur_steps": 1, "mu": 0.4})
    bfs = b.add("DiffusionSearchBFSSampler", (720, 300), {"prompt": PROMPT, "preset": "bfs", "particles": 4},
                vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0), local_search=(settings, 0))
    _sample_and_save(b, ids, bfs, 1080, "search/bfs_local")


def dual_verifiers(b):
    ids = _base(b)
    select = b.add("DiffusionSearchVerifierColourfulness", (0, 700), {"device": "auto"})
    settings = b.add("DiffusionSearchLocalSearchSettings", (720, 0), {"gradient_mode": "x0", "mu": 0.4})
    bfs = b.add("DiffusionSearchBFSSampler", (720, 300), {"prompt": PROMPT, "preset": "bfs", "particles": 4},
                vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0), select_verifier=(select, 0),
                local_search=(settings, 0))
    _sample_and_save(b, ids, bfs, 1080, "search/dual")


def rank_batch(b):
    ids = _base(b, batch=4)
    ks = b.add("KSampler", (720, 0), {"seed": 42, "steps": 30, "cfg": 7.0, "sampler_name": "euler_ancestral",
                                      "scheduler": "normal", "denoise": 1.0},
               model=(ids["ckpt"], 0), positive=(ids["pos"], 0), negative=(ids["neg"], 0),
               latent_image=(ids["latent"], 0))
    dec = b.add("VAEDecode", (720, 420), samples=(ks, 0), vae=(ids["ckpt"], 2))
    rank = b.add("DiffusionSearchRankImages", (1080, 0), {"prompt": PROMPT, "top_k": 2},
                 images=(dec, 0), verifier=(ids["ver"], 0))
    b.add("SaveImage", (1440, 0), {"filename_prefix": "search/ranked"}, images=(rank, 0))
    b.add("SaveImage", (1440, 400), {"filename_prefix": "search/top_k"}, images=(rank, 2))


def search_ksampler(b):
    ids = _base(b)
    ks = b.add("DiffusionSearchKSampler", (720, 0),
               {"seed": 42, "steps": 30, "cfg": 7.0, "scheduler": "normal", "prompt": PROMPT, "search": "bfs",
                "particles": 4},
               model=(ids["ckpt"], 0), positive=(ids["pos"], 0), negative=(ids["neg"], 0),
               latent_image=(ids["latent"], 0), vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0))
    best = b.add("VAEDecode", (1080, 0), samples=(ks, 0), vae=(ids["ckpt"], 2))
    b.add("SaveImage", (1440, 0), {"filename_prefix": "search/best"}, images=(best, 0))
    every = b.add("VAEDecode", (1080, 300), samples=(ks, 1), vae=(ids["ckpt"], 2))
    b.add("SaveImage", (1440, 400), {"filename_prefix": "search/candidates"}, images=(every, 0))


WAN_FILES = {"unet": "wan2.1_t2v_1.3B_fp16.safetensors", "clip": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
             "vae": "wan_2.1_vae.safetensors"}   # the names ComfyUI's own Wan 2.1 templates use
WAN_PROMPT = "a red fox running quickly through a winter forest, snowy trees and mountains, daytime, tracking camera"


def wan21_t2v_search(b):
    """Wan 2.1 1.3B text-to-video with BFS: ComfyUI's Wan template (loaders, shift 8, 832x480x33) + the search."""
    unet = b.add("UNETLoader", (0, 0), {"unet_name": WAN_FILES["unet"], "weight_dtype": "default"}, size=(320, 100))
    clip = b.add("CLIPLoader", (0, 170), {"clip_name": WAN_FILES["clip"], "type": "wan"}, size=(320, 130))
    vae = b.add("VAELoader", (0, 370), {"vae_name": WAN_FILES["vae"]}, size=(320, 80))
    latent = b.add("EmptyHunyuanLatentVideo", (0, 520), {"width": 832, "height": 480, "length": 33,
                                                          "batch_size": 1}, size=(320, 160))
    ver = b.add("DiffusionSearchVerifierPromptColour", (0, 750), {"device": "auto"}, size=(320, 130))
    model = b.add("ModelSamplingSD3", (380, 0), {"shift": 8.0}, size=(320, 80), model=(unet, 0))
    pos = b.add("CLIPTextEncode", (380, 150), {"text": WAN_PROMPT}, size=(320, 160), clip=(clip, 0))
    neg = b.add("CLIPTextEncode", (380, 380), {"text": "static, blurry, overexposed, low quality, jpeg artifacts, "
                                                       "deformed, extra fingers, cluttered background"},
                size=(320, 160), clip=(clip, 0))
    sched = b.add("BasicScheduler", (380, 610), {"scheduler": "simple", "steps": 30, "denoise": 1.0},
                  size=(320, 130), model=(model, 0))
    bfs = b.add("DiffusionSearchBFSSampler", (760, 0),
                {"prompt": WAN_PROMPT, "preset": "bfs", "particles": 4, "video_frames": 4,
                 "video_aggregate": "mean", "temporal_weight": 0.1, "video_decoder": "vae"},
                size=(320, 640), vae=(vae, 0), verifier=(ver, 0))
    sc = b.add("SamplerCustom", (1140, 0), {"add_noise": True, "noise_seed": 42, "cfg": 6.0}, size=(320, 270),
               model=(model, 0), positive=(pos, 0), negative=(neg, 0), sampler=(bfs, 0), sigmas=(sched, 0),
               latent_image=(latent, 0))
    dec = b.add("VAEDecode", (1140, 340), size=(320, 70), samples=(sc, 0), vae=(vae, 0))
    b.add("SaveAnimatedWEBP", (1140, 480), {"filename_prefix": "search/wan_bfs", "fps": 16.0}, size=(320, 380),
          images=(dec, 0))


def img2img_search(b):
    """Search from a photo: VAE-encoded, noised to denoise 0.6, every particle starting from it."""
    ids = _base(b, latent=False, sched=False)
    photo = b.add("LoadImage", (0, 590), {"image": "example.png"}, size=(320, 360))
    scaled = b.add("ImageScale", (380, 460), {"upscale_method": "lanczos", "width": 512, "height": 512,
                                              "crop": "center"}, size=(320, 180), image=(photo, 0))
    encoded = b.add("VAEEncode", (380, 700), size=(320, 70), pixels=(scaled, 0), vae=(ids["ckpt"], 2))
    ks = b.add("DiffusionSearchKSampler", (760, 0),
               {"seed": 42, "steps": 30, "cfg": 7.0, "scheduler": "normal", "denoise": 0.6, "prompt": PROMPT,
                "search": "bfs", "particles": 4}, size=(320, 800),
               model=(ids["ckpt"], 0), positive=(ids["pos"], 0), negative=(ids["neg"], 0),
               latent_image=(encoded, 0), vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0))
    b.add("SaveImage", (1140, 140), {"filename_prefix": "search/img2img_input"}, size=(320, 270), images=(scaled, 0))
    best = b.add("VAEDecode", (1140, 0), size=(320, 70), samples=(ks, 0), vae=(ids["ckpt"], 2))
    b.add("SaveImage", (1520, 0), {"filename_prefix": "search/img2img_best"}, size=(320, 270), images=(best, 0))


def budget_explorer(b):
    """Which preset and budget pay off for this model and verifier: reward against NFE and seconds."""
    ids = _base(b, sched=False)
    explorer = b.add("DiffusionSearchBudgetExplorer", (760, 0),
                     {"prompt": PROMPT, "presets": "best_of_n, fk, bfs", "budgets": "1, 2, 4", "seed": 0,
                      "seeds": 2, "steps": 30, "cfg": 7.0, "scheduler": "normal"}, size=(320, 860),
                     model=(ids["ckpt"], 0), positive=(ids["pos"], 0), negative=(ids["neg"], 0),
                     latent_image=(ids["latent"], 0), vae=(ids["ckpt"], 2), verifier=(ids["ver"], 0))
    b.add("SaveImage", (1140, 0), {"filename_prefix": "search/budget_explorer"}, size=(320, 270),
          images=(explorer, 0))


WORKFLOWS = {f.__name__: f for f in (bfs_search, bfs_presets_side_by_side, dfs_backtracking, local_search,
                                      dual_verifiers, rank_batch, search_ksampler, wan21_t2v_search, img2img_search,
                                      budget_explorer)}
# Video workflows need modern ComfyUI's nodes (EmptyHunyuanLatentVideo, Wan models): built and run only there.
VIDEO_WORKFLOWS = {"wan21_t2v_search"}


# Pictures made with the learned numbers world (worlds/numbers) instead of the tiny random model: the demo's
# swap_in_digits_world puts the digits UNet, the numbers VAE, Digits Conditioning and the numbers guide in place of
# the checkpoint, text encoders and verifier, asking for a handwritten 780 on a 192 px canvas; at CFG 0.75 plain
# sampling gets 40 % of whole numbers wrong, so the search has work to do. The explorer's widgets are set here.
WORLD_PICTURES = {"budget_explorer": {"seeds": 6, "budgets": "1, 2, 4, 8", "cfg": 0.75}}
PICTURE_LABEL, PICTURE_STEPS = "780", 25


def build_all(node_classes) -> dict:
    out = {}
    for name, fill in WORKFLOWS.items():
        if name in VIDEO_WORKFLOWS and "EmptyHunyuanLatentVideo" not in node_classes:
            continue
        builder = Builder(node_classes)
        fill(builder)
        out[name] = builder.to_ui()
    return out


def main(argv=None) -> int:
    """Regenerate every workflow, or only those named on the command line."""
    import logging
    import tempfile

    import torch

    sys.path.insert(0, str(WORKFLOW_DIR.parent))
    from devtools.comfy_runtime import ComfyRuntime
    from devtools.workflow_swaps import provide_input_images, swap_in_digits_world, swap_in_tiny_model
    from worlds.digits.graphs import register_folders
    from worlds.numbers.world import read_numbers_world
    from devtools.tiny_models import write_tiny_models
    from devtools.tiny_video_models import swap_in_tiny_wan, write_tiny_wan_models
    from devtools.ui_workflow import ui_to_api

    from devtools.workflow_previews import save_preview

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    base = Path(tempfile.mkdtemp(prefix="workflows_"))
    names = write_tiny_models(base / "models")
    world = read_numbers_world()
    runtime = register_folders(ComfyRuntime.boot(base, base / "models", world.model_folders()), world)
    only = set(sys.argv[1:] if argv is None else argv)
    for name, ui in build_all(runtime.node_classes).items():
        if only and name not in only:
            continue
        path = WORKFLOW_DIR / f"{name}.json"
        path.write_text(json.dumps(ui, indent=1) + "\n")
        prompt = ui_to_api(ui, runtime.node_classes)
        if name in VIDEO_WORKFLOWS:
            prompt = swap_in_tiny_wan(prompt, write_tiny_wan_models(base / "models"), size=64, frames=9, steps=12)
        elif name in WORLD_PICTURES:
            prompt = swap_in_digits_world(prompt, world, world.prompt(PICTURE_LABEL), 1, PICTURE_STEPS,
                                          width=world.canvas_width(PICTURE_LABEL),
                                          cfg=WORLD_PICTURES[name]["cfg"])
            for node in prompt.values():
                if node["class_type"] == "DiffusionSearchBudgetExplorer":
                    node["inputs"].update(WORLD_PICTURES[name])
        else:
            prompt = swap_in_tiny_model(prompt, names, size=64, steps=12)
        provide_input_images(prompt, runtime.folder_paths.get_input_directory(), size=64)
        outputs = runtime.run(prompt)
        save_preview(outputs, base / "output", WORKFLOW_DIR / f"{name}.png", ui)   # and the .jpg thumbnail
        print(f"wrote {path.name} and its preview")
    return 0


if __name__ == "__main__":
    sys.exit(main())
