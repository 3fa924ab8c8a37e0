"""keras_textdiff: text diffusion for Keras 3.

Train with `fit()`, decode in parallel with `generate()`, and (AR2Diff) turn
keras-hub autoregressive models into diffusion models.

Importing the package is cheap: Keras (and with it TensorFlow) is imported
on first use of one of the names below, e.g. `keras_textdiff.DiffusionDecoder`.
That lets the `textdiff` command answer `--help` at once, and choose the
Keras backend before Keras is imported. That first use imports every module
below, which also registers the classes that presets are saved with
(`CodeGPT2Tokenizer`, the GGUF classes), so that keras-hub's `from_preset`
finds them; `load()` does the same explicitly. A submodule
(`keras_textdiff.lora`) is imported on its own.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_NAMES = {
    "AR2DiffConverter": "keras_textdiff.ar2diff",
    "supported_backbone_names": "keras_textdiff.attention",
    "DiffusionDecoder": "keras_textdiff.diffusion_decoder",
    "DiffusionPreprocessor": "keras_textdiff.diffusion_preprocessor",
    "MaskNoise": "keras_textdiff.noise",
    "Noise": "keras_textdiff.noise",
    "UniformNoise": "keras_textdiff.noise",
    "masked_diffusion_loss": "keras_textdiff.noise",
    "sundae_loss": "keras_textdiff.noise",
    "DiffusionSampler": "keras_textdiff.samplers",
}
_SUBMODULES = (
    "bpe",  # Registers CodeGPT2Tokenizer for presets.
    "checkpoints",  # Registers the GGUF preset classes.
    "distribution",  # Data and model parallel (JAX).
    "lora",  # enable_lora, merge_lora.
)


def load():
    """Import the whole package (Keras included) and register its classes.

    Called by the first use of any public name; call it yourself before
    `keras_hub.models.CausalLM.from_preset(...)` on a preset that holds one
    of this package's classes, if nothing else of the package was used.
    """
    for name in _SUBMODULES:
        importlib.import_module(f"keras_textdiff.{name}")
    for name, module in _NAMES.items():
        globals()[name] = getattr(importlib.import_module(module), name)


def __getattr__(name):
    if name in _NAMES:
        load()
        return globals()[name]
    # A submodule (`keras_textdiff.lora`; also what `from keras_textdiff
    # import lora` asks first), imported alone: the package's own modules
    # import each other this way while `load()` runs.
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))
