"""Verifier loader nodes in ComfyUI: the file the user picks is the file loaded (subfolders too); paths that leave
the models folder are refused."""
import pytest
import torch

from comfy_harness import ComfyExecutionError
from verifier_fixtures import write_image_reward_files, write_pickscore_folder
from verifiers.face import ONet

FILE_LOADERS = ("Face", "ImageReward", "Pickscore", "ClipScore", "Hpsv2", "Aesthetic", "Classifier")
EXTRA = {"Classifier": {"architecture": "", "label": "", "input_size": 0, "normalisation": "auto"}}
SUBFOLDERS = ("facenet", "image_reward", "pickscore", "open_clip", "hpsv2", "aesthetic")


@pytest.fixture(scope="module")
def models(comfy, tmp_path_factory):
    """A models folder of our own for every verifier subfolder, registered with ComfyUI's folder_paths."""
    root = tmp_path_factory.mktemp("verifier_models")
    for sub in SUBFOLDERS:
        (root / sub).mkdir()
        comfy.folder_paths.add_model_folder_path(sub, str(root / sub))
    yield root
    for sub in SUBFOLDERS:  # later tests expect no verifier weights to be installed
        comfy.folder_paths.folder_names_and_paths[sub][0].remove(str(root / sub))
        getattr(comfy.folder_paths, "filename_list_cache", {}).pop(sub, None)


def _loader(comfy, name):
    return comfy.node_classes[f"DiffusionSearchVerifier{name}"]


def _load(comfy, name, **files):
    with torch.inference_mode():  # as ComfyUI runs nodes
        return _loader(comfy, name)().load(device="cpu", dtype="float32", chunk_size=4, **files)[0]


def _onet_file(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    net = ONet()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    torch.save(net.state_dict(), path)
    return net.state_dict()


def test_face_loader_loads_the_picked_file_in_a_subfolder(comfy, models):
    default = _onet_file(models / "facenet" / "onet.pt", seed=0)
    picked = _onet_file(models / "facenet" / "mine" / "onet_finetuned.pt", seed=1)
    verifier = _load(comfy, "Face", weights="mine/onet_finetuned.pt")
    assert torch.equal(verifier.net.conv1.weight, picked["conv1.weight"])
    assert not torch.equal(verifier.net.conv1.weight, default["conv1.weight"])
    (models / "facenet" / "mine" / "garbage.pt").write_bytes(b"not weights at all\n" * 20)
    with pytest.raises(ValueError, match="garbage.pt.*not a weights file"):
        _load(comfy, "Face", weights="mine/garbage.pt")


def test_face_loader_in_a_graph_uses_the_picked_file(comfy, models):
    _onet_file(models / "facenet" / "onet.pt", seed=0)
    picked = _onet_file(models / "facenet" / "graph" / "other.pt", seed=2)
    graph = {"face": {"class_type": "DiffusionSearchVerifierFace",
                      "inputs": {"weights": "graph/other.pt", "device": "cpu", "dtype": "float32", "chunk_size": 4}},
             "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["face", 0], "key": "face"}}}
    comfy.run(graph)
    assert torch.equal(comfy.captured["face"].net.dense6_1.weight, picked["dense6_1.weight"])


def test_image_reward_loader_reads_companions_from_beside_the_picked_checkpoint(comfy, models):
    folder = write_image_reward_files(models / "image_reward" / "v1", torch.Generator().manual_seed(3))
    (folder / "ImageReward.pt").rename(folder / "ImageReward_renamed.pt")
    verifier = _load(comfy, "ImageReward", weights="v1/ImageReward_renamed.pt")
    images = torch.rand(2, 32, 32, 3, generator=torch.Generator().manual_seed(4))
    assert verifier.score(images, "a red car").shape == (2,)


def test_pickscore_loader_loads_a_renamed_weights_file_with_its_config(comfy, models):
    folder = write_pickscore_folder(models / "pickscore" / "v1", torch.Generator().manual_seed(5))
    (folder / "model.safetensors").rename(folder / "pickscore_v1.safetensors")
    verifier = _load(comfy, "Pickscore", weights="v1/pickscore_v1.safetensors")
    from safetensors.torch import load_file
    saved = load_file(str(folder / "pickscore_v1.safetensors"))
    assert torch.equal(verifier.model.visual_projection.weight, saved["visual_projection.weight"])


@pytest.mark.parametrize("name", FILE_LOADERS)
@pytest.mark.parametrize("bad", ["../../x", "../../../etc/passwd", "/etc/passwd", "sub/../../x"])
def test_every_file_widget_refuses_paths_out_of_the_models_folder(comfy, models, name, bad):
    loader = _loader(comfy, name)
    widgets = [w for w, spec in loader.INPUT_TYPES()["required"].items() if isinstance(spec[0], list)
               and w not in ("device", "dtype", "normalisation")]
    assert widgets, name
    for widget in widgets:
        files = {w: "x.pt" for w in widgets}
        files[widget] = bad
        with pytest.raises(ValueError, match="refused"):
            _load(comfy, name, **files, **EXTRA.get(name, {}))


def test_traversal_through_the_api_is_refused_before_anything_runs(comfy, models):
    graph = {"face": {"class_type": "DiffusionSearchVerifierFace",
                      "inputs": {"weights": "../../x", "device": "cpu", "dtype": "float32", "chunk_size": 4}},
             "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["face", 0], "key": "face"}}}
    with pytest.raises(ComfyExecutionError, match="weights"):
        comfy.run(graph)
