"""The one place that knows how the 2024 ComfyUI snapshot and modern ComfyUI differ (see docs/nodes.md)."""
from __future__ import annotations

import contextlib
import copy
import importlib
import os

import torch

EVENT_NAME = "diffusion_search.event"


def _comfy(name: str):
    """Import a ComfyUI module when first needed, so the pack also imports outside ComfyUI (tests, scripts)."""
    return importlib.import_module(name)


def noise_form_of(base_model) -> str:
    """'flow' for CONST model sampling (SD3, FLUX: x = (1-σ)x0 + σε), else 'eps' (SD1.5, SDXL, v-prediction)."""
    ms = _comfy("comfy.model_sampling")
    const = getattr(ms, "CONST", None)
    if const is not None and isinstance(base_model.model_sampling, const):
        return "flow"
    return "eps"


def base_model_of(model_k):
    """The comfy BaseModel inside the wrapped denoiser a KSAMPLER function receives (same path in both versions)."""
    inner = model_k
    for _ in range(4):
        if hasattr(inner, "process_latent_out") and hasattr(inner, "model_sampling"):
            return inner
        inner = getattr(inner, "inner_model", None)
        if inner is None:
            break
    raise RuntimeError("could not find ComfyUI's BaseModel inside the sampler's model wrapper "
                       "(expected model.inner_model.inner_model); is this ComfyUI version supported?")


def make_ksampler(sampler_function, extra_options: dict):
    """Wrap a k-diffusion-signature function as a SAMPLER; identical call in both versions."""
    return _comfy("comfy.samplers").KSAMPLER(sampler_function, extra_options=extra_options)


def check_interrupted() -> None:
    """Raise ComfyUI's InterruptProcessingException if the user pressed Cancel."""
    _comfy("comfy.model_management").throw_exception_if_processing_interrupted()


def interrupt_exception() -> type:
    """The exception ComfyUI raises when the user pressed Cancel (InterruptProcessingException, both versions)."""
    return _comfy("comfy.model_management").InterruptProcessingException


def output_stem(filename_prefix: str) -> str:
    """A new path (add the extension) in ComfyUI's output folder named like SaveImage's: prefix_00001_, counting up."""
    folder_paths = _comfy("folder_paths")
    folder, name, counter, _, _ = folder_paths.get_save_image_path(filename_prefix, folder_paths.get_output_directory())
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{name}_{counter:05}_")


def check_output_prefix(filename_prefix: str) -> None:
    """Raise ValueError naming ``filename_prefix`` when SaveImage's rules refuse it (outside the output folder, a
    character the file system rejects, a folder part that is a file)."""
    folder_paths = _comfy("folder_paths")
    try:
        folder, name = folder_paths.get_save_image_path(filename_prefix, folder_paths.get_output_directory())[:2]
        if not name or name in (".", ".."):
            raise ValueError("it names no file")
        try:   # a name the file system refuses (a NUL byte; on Windows <>:"|?*) fails here, not after the runs
            os.stat(os.path.join(folder, f"{name}_00001_.md"))
        except FileNotFoundError:
            pass
    except Exception as error:   # noqa: BLE001 - ComfyUI raises a plain Exception for a path outside the folder
        reason = str(error).strip().splitlines()[0].strip("* ") if str(error).strip() else type(error).__name__
        raise ValueError(f"'filename_prefix' {filename_prefix!r} cannot name a file in ComfyUI's output folder "
                         f"({reason}): use a plain name such as 'budget_explorer' or 'runs/explorer'") from None


def state_folder() -> str:
    """Where finished searches are saved for extension after a restart: <output>/diffusion_search_states."""
    folder_paths = _comfy("folder_paths")
    return os.path.join(folder_paths.get_output_directory(), "diffusion_search_states")


def progress_bar(total: int, node_id=None):
    """_comfy("comfy.utils").ProgressBar; modern takes node_id (so the bar shows on the right node), 2024 does not."""
    try:
        return _comfy("comfy.utils").ProgressBar(total, node_id=node_id)
    except TypeError:
        return _comfy("comfy.utils").ProgressBar(total)


def _prompt_server():
    try:
        server = importlib.import_module("server")
    except ImportError:
        return None
    return getattr(server.PromptServer, "instance", None)


def current_prompt_id():
    """The id of the running prompt when the server exposes it (both versions set `last_prompt_id`)."""
    instance = _prompt_server()
    return getattr(instance, "last_prompt_id", None) if instance is not None else None


def send_event(event: dict) -> None:
    """Forward one search event to the browser; silently skipped when no PromptServer runs (plain scripts)."""
    instance = _prompt_server()
    if instance is None:
        return
    client_id = getattr(instance, "client_id", None)
    instance.send_sync(EVENT_NAME, event, client_id)


def send_progress_text(text: str, node_id) -> None:
    """Show a line of text on the node (modern ComfyUI's progress text); skipped where the server has none (2024)."""
    instance = _prompt_server()
    send = getattr(instance, "send_progress_text", None) if instance is not None else None
    if send is not None and node_id is not None:
        send(text, str(node_id), getattr(instance, "client_id", None))


def load_models_to_device(patchers) -> None:
    """Ask ComfyUI's memory manager to put these ModelPatchers on the compute device."""
    _comfy("comfy.model_management").load_models_gpu(list(patchers))


def free_memory_bytes(device) -> float:
    """Free memory on ``device`` as ComfyUI's memory manager counts it (RAM on the CPU)."""
    return float(_comfy("comfy.model_management").get_free_memory(device))


def free_memory_for_batch(base_model, device) -> float:
    """Free memory for a denoiser batch, counted as ComfyUI's own sampler counts it for its cond batches.

    ComfyUI 0.33 with dynamic VRAM (comfy-aimdo) keeps the UNet's weights in VRAM only while nothing else wants it,
    and its sampler counts that evictable part as free (``ModelPatcher.get_free_memory``); older versions ask the
    memory manager alone.
    """
    patcher = getattr(base_model, "current_patcher", None)
    if patcher is not None and hasattr(patcher, "get_free_memory"):
        return float(patcher.get_free_memory(device))
    return free_memory_bytes(device)


def copy_for_grad(module: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy made outside inference mode: weights made under inference_mode cannot join autograd."""
    from ..verifiers.base import make_grad_ready
    with torch.inference_mode(False), torch.no_grad():
        clone = copy.deepcopy(module)
        make_grad_ready(clone)   # deepcopy may keep inference tensors; rebuild those as normal frozen ones
        clone.requires_grad_(False)
    return clone


def scheduler_names() -> list[str]:
    return list(_comfy("comfy.samplers").KSampler.SCHEDULERS)


def model_sampling_of(model_patcher):
    """The model's sampling object with node patches (ModelSamplingSD3, ...) applied, as ComfyUI's schedulers read it.

    Modern ComfyUI reads it through get_model_object without loading the model; the 2024 snapshot applies object
    patches only when the model loads, so its BasicScheduler loads the model first, and so does this.
    """
    get_model_object = getattr(model_patcher, "get_model_object", None)
    if get_model_object is not None:
        return get_model_object("model_sampling")
    load_models_to_device([model_patcher])
    return model_patcher.model.model_sampling


def calculate_sigmas(model_patcher, scheduler: str, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """Sigmas like BasicScheduler: modern has calculate_sigmas(model_sampling, ...), 2024 the *_scheduler form."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise must be in (0, 1], got {denoise}")
    total_steps = int(steps / denoise) if denoise < 1.0 else steps
    model_sampling = model_sampling_of(model_patcher)
    samplers = _comfy("comfy.samplers")
    if hasattr(samplers, "calculate_sigmas"):
        sigmas = samplers.calculate_sigmas(model_sampling, scheduler, total_steps)
    else:  # 2024: the scheduler reads model.model_sampling, patched by the load above
        sigmas = samplers.calculate_sigmas_scheduler(model_patcher.model, scheduler, total_steps)
    return sigmas.cpu()[-(steps + 1):]


def fix_empty_latent_channels(model_patcher, latent: torch.Tensor) -> torch.Tensor:
    """Widen an all-zero 4-channel latent to the model's channels (16 for SD3 / FLUX), as KSampler does (modern)."""
    fix = getattr(_comfy("comfy.sample"), "fix_empty_latent_channels", None)
    return latent if fix is None else fix(model_patcher, latent)


def sample_custom(model_patcher, noise, cfg, sampler, sigmas, positive, negative, latent_image, *, noise_mask=None,
                  callback=None, seed=None):
    """_comfy("comfy.sample").sample_custom: the same call and meaning in both versions (SamplerCustom's path)."""
    disable_pbar = not getattr(_comfy("comfy.utils"), "PROGRESS_BAR_ENABLED", True)
    return _comfy("comfy.sample").sample_custom(model_patcher, noise, cfg, sampler, sigmas, positive, negative, latent_image,
                                      noise_mask=noise_mask, callback=callback, disable_pbar=disable_pbar, seed=seed)


def prepare_noise(latent_image: torch.Tensor, seed: int, batch_index=None) -> torch.Tensor:
    """ComfyUI's seeded initial noise, so the same seed gives the same image as KSampler / SamplerCustom."""
    return _comfy("comfy.sample").prepare_noise(latent_image, seed, batch_index)


def preview_callback(model_patcher, steps: int, x0_output: dict):
    """latent_preview.prepare_callback: step progress bar plus live previews of the current best particle."""
    return _comfy("latent_preview").prepare_callback(model_patcher, steps, x0_output)


def _saved_for_backward(tensor: torch.Tensor) -> torch.Tensor:
    # Weights never change during a forward pass; activations may (FLUX's `txt +=`, SD3's MMDiT, the 2024 UNet add in
    # place after autograd saved them, which fails the backward). Saving a copy keeps what the forward pass saw.
    return tensor if isinstance(tensor, torch.nn.Parameter) else tensor.clone()


def differentiable_denoiser(model_k, base_model):
    """model_k that autograd can pass through, in both ComfyUI versions and every model family.

    Loader nodes create weights under inference mode, and autograd refuses to save inference tensors: each weight is
    swapped for a normal copy (once, in place, same values) and the sigma rows are cloned. ComfyUI's blocks add in
    place to tensors autograd has saved; the forward pass runs with saved-tensor hooks that keep copies instead.
    """
    from ..verifiers.base import make_grad_ready
    make_grad_ready(base_model.diffusion_model)

    def denoise(x, sigma, **extra_args):
        with torch.inference_mode(False):
            sigma = sigma.clone()
        if not torch.is_grad_enabled():
            return model_k(x, sigma, **extra_args)
        with torch.autograd.graph.saved_tensors_hooks(_saved_for_backward, _unpack_saved), _autograd_code_paths():
            return model_k(x, sigma, **extra_args)

    return denoise


@contextlib.contextmanager
def _autograd_code_paths():
    """ComfyUI 0.33+ runs fused kernels (comfy_kitchen's RoPE, INT8 linears) that have no backward unless
    ``model_management.in_training`` is set, its own switch to the plain torch code; older versions lack the flag."""
    mm = _comfy("comfy.model_management")
    if not hasattr(mm, "in_training"):
        yield
        return
    before, mm.in_training = mm.in_training, True
    try:
        yield
    finally:
        mm.in_training = before


def _unpack_saved(tensor: torch.Tensor) -> torch.Tensor:
    return tensor
