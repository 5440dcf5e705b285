"""VLM verifier on tiny random-weight Qwen2-VL / Qwen2.5-VL / LLaVA / Idefics3 folders: p(Yes) scoring, batching,
chunking, the weighted aggregation over questions, and the errors for missing or wrong files."""
import json
import shutil

import pytest
import torch

import verifiers
from verifiers.base import MissingWeightsError
from verifiers.checkpoints import WeightsFileError
from verifiers.vlm import load_vlm, parse_questions
from devtools.tiny_vlm import write_qwen2_vl_folder

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava", "idefics3")
PROMPTS = ["a cat", "a red car on a big tree in the sky", "a dog"]  # different lengths: left padding is exercised


@pytest.fixture(scope="module")
def vlm_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vlm")
    return {family: write_qwen2_vl_folder(root / family, torch.Generator().manual_seed(index), family=family)
            for index, family in enumerate(FAMILIES)}


def _images(count, seed=0, size=64):
    return torch.rand(count, size, size, 3, generator=torch.Generator().manual_seed(seed))


def _load(folder, **options):
    options = {"image_size": 64, "chunk_size": 8, **options}
    return load_vlm(folder, **options)


@pytest.mark.parametrize("family", FAMILIES)
def test_p_yes_is_a_probability_that_depends_on_the_image(vlm_folders, family):
    verifier = _load(vlm_folders[family], questions="Is there a red car?", aggregation="prob")
    images = _images(4)
    p_yes = verifier.score(images)
    assert p_yes.shape == (4,) and ((p_yes > 0) & (p_yes < 1)).all()
    assert torch.equal(verifier.score(images), p_yes)  # deterministic
    assert p_yes.unique().numel() == 4, "different images must get different p(Yes)"
    log_p = _load(vlm_folders[family], questions="Is there a red car?").score(images)
    torch.testing.assert_close(log_p, p_yes.log(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_equals_one_by_one_and_chunking_changes_nothing(vlm_folders, family):
    question = "Does this image show {prompt}?"
    images = _images(3, seed=1)
    batched = _load(vlm_folders[family], questions=question, chunk_size=8).score(images, PROMPTS)
    chunked = _load(vlm_folders[family], questions=question, chunk_size=2).score(images, PROMPTS)
    single = _load(vlm_folders[family], questions=question, chunk_size=1)
    one_by_one = torch.cat([single.score(images[i:i + 1], p) for i, p in enumerate(PROMPTS)])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(chunked, one_by_one, rtol=1e-4, atol=1e-4)


def test_the_prompt_template_reaches_the_model(vlm_folders):
    verifier = _load(vlm_folders["qwen2_vl"], questions="Does this image show {prompt}?")
    assert verifier.needs_prompt
    images = _images(1, seed=2).expand(2, -1, -1, -1)
    rewards = verifier.score(images, ["a cat", "a red car"])
    assert rewards[0] != rewards[1]
    assert not _load(vlm_folders["qwen2_vl"], questions="Is there a red car?").needs_prompt


def test_weighted_aggregation_over_questions(vlm_folders):
    """log_prob = Σ w log p / Σ w, prob = Σ w p / Σ w of the single-question scores; log_prob <= log(prob)."""
    folder, images = vlm_folders["qwen2_vl"], _images(3, seed=3)
    first, second = "Is there a red car?", "Is there a dog with a tree?"
    log_a, log_b = (_load(folder, questions=q).score(images) for q in (first, second))
    both = f"{first}\n# a comment line is skipped\n3 | {second}"
    combined = _load(folder, questions=both).score(images)
    torch.testing.assert_close(combined, (log_a + 3 * log_b) / 4, rtol=1e-4, atol=1e-4)
    mean_p = _load(folder, questions=both, aggregation="prob").score(images)
    torch.testing.assert_close(mean_p, (log_a.exp() + 3 * log_b.exp()) / 4, rtol=1e-4, atol=1e-7)
    assert (combined <= mean_p.log() + 1e-5).all()  # weighted geometric mean <= arithmetic mean


def test_question_parsing_and_its_errors():
    parsed = parse_questions("Is it red?\n 2.5 | Is it a car?\n\n# note\n0|Is it blue?")
    assert [(q.text, q.weight) for q in parsed] == [("Is it red?", 1.0), ("Is it a car?", 2.5), ("Is it blue?", 0.0)]
    assert parse_questions([("a?", 2), "b?"])[0].weight == 2.0
    with pytest.raises(ValueError, match="at least one question"):
        parse_questions("\n# only a comment\n")
    with pytest.raises(ValueError, match="weights must be >= 0"):
        parse_questions("-1 | Is it red?")
    with pytest.raises(ValueError, match="not all 0"):
        parse_questions("0 | Is it red?")


def test_no_gradients_and_bfloat16(vlm_folders):
    verifier = _load(vlm_folders["qwen2_vl"], questions="Is there a red car?", dtype=torch.bfloat16)
    assert not verifier.differentiable and not verifiers.REGISTRY["vlm"].differentiable
    assert next(verifier.model.parameters()).dtype == torch.bfloat16
    images = _images(2, seed=4)
    rewards = verifier.score(images)
    assert rewards.dtype == torch.float32 and torch.isfinite(rewards).all()
    with pytest.raises(ValueError, match="not differentiable"):
        verifier.score(images.clone().requires_grad_(True), grad=True)


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / folder.name)


@pytest.mark.parametrize("remove, named", [("config.json", "config.json"), ("model.safetensors", "model.safetensors"),
                                           ("tokenizer.json", "tokenizer.json"),
                                           ("processor_config.json", "preprocessor_config.json"),
                                           ("chat_template.jinja", "chat_template.jinja")])
def test_missing_files_name_the_file_the_folder_and_the_source(vlm_folders, tmp_path, remove, named):
    folder = _copy(vlm_folders["qwen2_vl"], tmp_path)
    (folder / remove).unlink()
    with pytest.raises(MissingWeightsError) as info:
        verifiers.load("vlm", folder)
    message = str(info.value)
    assert named in message and "models/vlm/qwen2_vl/" in message and "Get it from" in message
    assert "huggingface.co/Qwen" in message


def test_missing_folder_shard_and_pickled_weights(vlm_folders, tmp_path):
    with pytest.raises(MissingWeightsError, match="'nowhere'.*models/vlm/"):
        verifiers.load("vlm", tmp_path / "nowhere")
    folder = _copy(vlm_folders["qwen2_vl"], tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(MissingWeightsError, match="model.safetensors.*pytorch_model.bin: pickled weights are refused"):
        verifiers.load("vlm", folder)
    index = {"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(MissingWeightsError, match="model-00001-of-00002.safetensors"):
        verifiers.load("vlm", folder)


def test_the_folder_above_a_model_names_the_model_folder_inside(vlm_folders):
    expected = r"config.json.*folder above a model.*inside it \(idefics3, llava, qwen2_5_vl and 1 more\)"
    with pytest.raises(MissingWeightsError, match=expected):
        verifiers.load("vlm", vlm_folders["qwen2_vl"].parent)


def test_a_folder_of_another_model_kind_is_named_as_such(tmp_path):
    from verifier_fixtures import write_pickscore_folder
    folder = write_pickscore_folder(tmp_path / "clip", torch.Generator().manual_seed(0))
    with pytest.raises(WeightsFileError, match="holds a 'clip' model.*not a vision-language model.*Qwen2-VL"):
        verifiers.load("vlm", folder)


def test_weights_that_do_not_fit_the_config_are_refused(vlm_folders, tmp_path):
    from safetensors.torch import load_file, save_file
    folder = _copy(vlm_folders["qwen2_vl"], tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    dropped = sorted(k for k in state if "lm_head" in k)
    save_file({k: v for k, v in state.items() if k not in dropped}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(WeightsFileError, match="do not fit its config.json.*missing.*lm_head"):
        verifiers.load("vlm", folder)


def test_an_old_transformers_is_named_with_the_fix(vlm_folders, monkeypatch):
    import transformers
    monkeypatch.setattr(transformers, "__version__", "4.45.2")
    with pytest.raises(RuntimeError, match="needs transformers >= 4.49.*has 4.45.2.*pip install -U"):
        verifiers.load("vlm", vlm_folders["qwen2_vl"])
