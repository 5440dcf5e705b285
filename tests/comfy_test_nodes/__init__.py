"""Test-only ComfyUI nodes: stand-ins for parts the tiny test model lacks (it has no text encoder)."""
import torch


# (tokens, context width, pooled width) of each family's text encoders: SD1 CLIP-L; SDXL CLIP-L+G; SD3 and FLUX T5-XXL
# with CLIP-L(+G) pooled. Short token counts for the big-context families keep the cross-attention cheap on a CPU.
FAMILIES = {"sd15": (77, 768, None), "sdxl": (8, 2048, 1280), "sd3": (8, 4096, 2048), "flux": (8, 4096, 768)}


class DiffusionSearchTestConditioning:
    """Seeded random CONDITIONING shaped like a family's text encoder output; replaces CLIPTextEncode for tiny models."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
            "text": ("STRING", {"default": "", "multiline": True,
                                "tooltip": "Ignored for the embedding; kept so prompts travel like CLIPTextEncode's."}),
        }, "optional": {
            "width": ("INT", {"default": 768, "min": 1, "max": 8192,
                              "tooltip": "Embedding width: 768 (SD1.x CLIP), 4096 (umt5-xxl, Wan)."}),
            "tokens": ("INT", {"default": 77, "min": 1, "max": 1024}),
            "family": (["custom", *FAMILIES], {"default": "custom", "tooltip":
                       "custom: width x tokens, no pooled output; a family: its context and pooled shapes."}),
        }}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "testing/diffusion_search"

    def encode(self, seed, text, width=768, tokens=77, family="custom"):
        pooled_width = None
        if family != "custom":
            tokens, width, pooled_width = FAMILIES[family]
        g = torch.Generator().manual_seed(seed)
        context = torch.randn(1, tokens, width, generator=g)
        pooled = None if pooled_width is None else torch.randn(1, pooled_width, generator=g)
        return ([[context, {"pooled_output": pooled}]],)


NODE_CLASS_MAPPINGS = {"DiffusionSearchTestConditioning": DiffusionSearchTestConditioning}
NODE_DISPLAY_NAME_MAPPINGS = {"DiffusionSearchTestConditioning": "Test conditioning (tiny model)"}


class _AnyType(str):
    """A socket type that matches every other (both ComfyUI versions compare types with !=)."""

    def __ne__(self, other):
        return False


CAPTURED: dict = {}


class DiffusionSearchTestCapture:
    """Output node that keeps whatever reaches it in CAPTURED[key], so tests read raw tensors in any ComfyUI version."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": (_AnyType("*"),), "key": ("STRING", {"default": "out"})}}

    RETURN_TYPES = ()
    FUNCTION = "capture"
    OUTPUT_NODE = True
    CATEGORY = "testing/diffusion_search"

    def capture(self, value, key):
        CAPTURED[key] = value
        return {}


NODE_CLASS_MAPPINGS["DiffusionSearchTestCapture"] = DiffusionSearchTestCapture
NODE_DISPLAY_NAME_MAPPINGS["DiffusionSearchTestCapture"] = "Test capture"


class DiffusionSearchTestRecordModelInput:
    """MODEL -> MODEL that appends every UNet call's (input rows, sigma rows) to CAPTURED[key]: what the sampler fed in.

    Uses ComfyUI's own unet function wrapper (model_options["model_function_wrapper"]), as in both versions."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "key": ("STRING", {"default": "model_inputs"})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "testing/diffusion_search"

    def patch(self, model, key):
        calls = CAPTURED.setdefault(key, [])
        calls.clear()

        def record(apply_model, args):
            calls.append((args["input"].detach().clone(), args["timestep"].detach().clone()))
            return apply_model(args["input"], args["timestep"], **args["c"])

        patched = model.clone()
        patched.set_model_unet_function_wrapper(record)
        return (patched,)


NODE_CLASS_MAPPINGS["DiffusionSearchTestRecordModelInput"] = DiffusionSearchTestRecordModelInput
NODE_DISPLAY_NAME_MAPPINGS["DiffusionSearchTestRecordModelInput"] = "Test record model input"


LATENTS: dict = {}


class DiffusionSearchTestLatent:
    """Emits the latent a test put in LATENTS[key], so tests feed exact latents to VAEDecode / samplers."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"key": ("STRING", {"default": "latent"})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "emit"
    CATEGORY = "testing/diffusion_search"

    def emit(self, key):
        return ({"samples": LATENTS[key].clone()},)


NODE_CLASS_MAPPINGS["DiffusionSearchTestLatent"] = DiffusionSearchTestLatent
NODE_DISPLAY_NAME_MAPPINGS["DiffusionSearchTestLatent"] = "Test latent"


SAMPLER_FUNCTIONS: dict = {}


class DiffusionSearchTestSampler:
    """A SAMPLER running SAMPLER_FUNCTIONS[key]: lets a test run code where a sampler runs (ComfyUI's model wrapper)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"key": ("STRING", {"default": "check"})}}

    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "build"
    CATEGORY = "testing/diffusion_search"

    def build(self, key):
        import comfy.samplers

        return (comfy.samplers.KSAMPLER(SAMPLER_FUNCTIONS[key]),)


NODE_CLASS_MAPPINGS["DiffusionSearchTestSampler"] = DiffusionSearchTestSampler
NODE_DISPLAY_NAME_MAPPINGS["DiffusionSearchTestSampler"] = "Test sampler"


VERIFIER_HOOKS: dict = {}   # key -> callable(call number), run before each scoring call (Cancel, a fault)


class SlowVerifier:
    """A verifier that takes ``seconds`` per call of ``chunk_size`` images (a large reward model on a slow machine)."""

    differentiable = False

    def __init__(self, seconds: float, chunk_size: int, key: str):
        self.seconds, self.chunk_size, self.key = float(seconds), int(chunk_size), key
        self.name = f"slow({seconds:g} s per {chunk_size})"

    def key_fields(self) -> dict:
        """A duck-typed verifier opts into kept searches with the Verifier interface's key_fields (plain data)."""
        return {"name": self.name}

    def score(self, images, prompts=None, *, grad=False):
        import time

        calls = CAPTURED.setdefault(self.key, [])
        calls.append((time.perf_counter(), images.shape[0]))
        hook = VERIFIER_HOOKS.get(self.key)
        if hook is not None:
            hook(len(calls))
        time.sleep(self.seconds)
        return images.mean(dim=(1, 2, 3)).float()


class DiffusionSearchTestSlowVerifier:
    """SEARCH_VERIFIER that sleeps per call and logs each call in CAPTURED[key]; VERIFIER_HOOKS[key] runs first."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 60.0}),
                             "chunk_size": ("INT", {"default": 1, "min": 1, "max": 64}),
                             "key": ("STRING", {"default": "slow"})}}

    RETURN_TYPES = ("SEARCH_VERIFIER",)
    FUNCTION = "load"
    CATEGORY = "testing/diffusion_search"

    def load(self, seconds, chunk_size, key):
        return (SlowVerifier(seconds, chunk_size, key),)


NODE_CLASS_MAPPINGS["DiffusionSearchTestSlowVerifier"] = DiffusionSearchTestSlowVerifier
NODE_DISPLAY_NAME_MAPPINGS["DiffusionSearchTestSlowVerifier"] = "Test slow verifier"
