"""AR2Diff: turn a pretrained keras-hub autoregressive model into a diffusion model.

The paper's recipe (PAPER.md, "AR2Diff"): take a decoder-only AR model, make
its attention bidirectional, keep its weights, and continue training with the
diffusion loss (`adapt`) before fine-tuning. `AR2DiffConverter` does the
first part: it wraps the AR backbone in a `DiffusionDecoder` that shares (or
copies) its weights and carries the tokenizer over.
"""

import os

import keras
import numpy as np

from keras_textdiff import attention as attention_lib
from keras_textdiff import lora as lora_lib
from keras_textdiff.diffusion_decoder import DiffusionDecoder
from keras_textdiff.diffusion_decoder import check_sequence_length
from keras_textdiff.diffusion_decoder import check_vocabulary
from keras_textdiff.diffusion_preprocessor import DiffusionPreprocessor
from keras_textdiff.noise import MaskNoise

ATTENTION_CHOICES = ("bidirectional", "prefix", "block")


class AR2DiffConverter:
    """Convert a keras-hub decoder-only `CausalLM` into a `DiffusionDecoder`.

    The result runs the same Transformer with its attention switched to
    `attention`; with `copy=False` the two models share their weight
    variables (training one trains the other), and the AR model keeps its
    causal attention. The AR model's tokenizer is reused in a
    `DiffusionPreprocessor`.

    Args:
        attention: `"bidirectional"` (the paper), `"prefix"` (prefix tokens
            attend only to the prefix, so decoding can compute the prompt
            once; target tokens attend to everything), or `"block"` (the
            prefix keeps the AR model's causal attention, so its hidden
            states are the AR model's; target blocks of `block_size` attend
            both ways inside and to earlier blocks).
        block_size: int, for `attention="block"`: target positions per
            block (`target_length` for one block over the whole target).
        target_length: int or `None`. The diffusion preprocessor's target
            region: `T` positions after the prefix (see
            `DiffusionPreprocessor`); `None`: up to `sequence_length`.
        separator: what closes the prompt in the diffusion preprocessor:
            `"end_token"`, or text such as `"\\n"`, the separator the AR
            model was fine-tuned with (see `DiffusionPreprocessor`).
        copy: bool. Copy the weights instead of sharing them.
        sequence_length: int >= 4 or `None`. The diffusion preprocessor's
            length, at most the backbone's `max_sequence_length` where it
            has a position table (GPT-2, OPT; `convert()` refuses a longer
            one). Defaults to the AR preprocessor's `sequence_length`.
        shifted_prediction: bool. Position `i` predicts token `i + 1` from
            the backbone's view, so the AR head keeps its trained role (see
            `DiffusionDecoder`). Off by default.
        annealing_steps: int or `None`. Ramp attention from causal to
            `attention` over this many training steps (DiffuGPT). Off by
            default.
        add_mask_token: bool. Append a mask token to the vocabulary (one
            new embedding row, initialized to the mean embedding) and train
            with `MaskNoise` instead of SUNDAE's uniform noise. The tokenizer
            is unchanged: the mask token is an input symbol only. This
            implies `copy=True`, since the embedding grows. Off by default.
        sampler: a `DiffusionSampler` for the converted model, or `None`.
        lora_rank: int >= 1 or `None`. Freeze the converted backbone and
            train rank-`lora_rank` LoRA updates of its attention instead
            (see `keras_textdiff.lora.enable_lora`): only the LoRA weights
            are trainable. Without `copy` (or `add_mask_token`) the AR
            model shares the backbone, so LoRA is enabled on it too. Call
            `keras_textdiff.lora.merge_lora(model.backbone)` before saving,
            so the preset holds merged weights and loads without LoRA.
            Off by default.

    Example:
    ```python
    ar = keras_hub.models.CausalLM.from_preset("./my_gpt2_preset")
    model = keras_textdiff.AR2DiffConverter(attention="bidirectional").convert(ar)
    model.compile()  # The diffusion loss is built in.
    model.fit(texts, batch_size=8, epochs=1)  # AR2Diff_N: adapt on raw text.
    model.fit({"prefix": prompts, "target": answers}, epochs=3)  # Fine-tune.
    model.generate(["def fibonacci(n):"], max_length=128)

    # LoRA: train low-rank updates of the attention, then merge them.
    model = keras_textdiff.AR2DiffConverter(lora_rank=8).convert(ar)
    model.compile()
    model.fit(texts, batch_size=8, epochs=1)
    keras_textdiff.lora.merge_lora(model.backbone)
    model.save_to_preset("./adapted")
    ```
    """

    def __init__(
        self,
        attention="bidirectional",
        copy=False,
        sequence_length=None,
        shifted_prediction=False,
        annealing_steps=None,
        add_mask_token=False,
        sampler=None,
        lora_rank=None,
        block_size=None,
        target_length=None,
        separator="end_token",
    ):
        if attention not in ATTENTION_CHOICES:
            raise ValueError(
                f"`attention` must be one of {ATTENTION_CHOICES}. "
                f"Received: {attention!r}"
            )
        attention_lib.check_mode(attention, block_size, target_length)
        self.attention = attention
        self.block_size = block_size
        self.target_length = target_length
        self.separator = separator
        self.copy = bool(copy)
        self.sequence_length = sequence_length
        self.shifted_prediction = bool(shifted_prediction)
        self.annealing_steps = annealing_steps
        self.add_mask_token = bool(add_mask_token)
        self.sampler = sampler
        self.lora_rank = lora_lib.check_lora_rank(lora_rank)

    def convert(self, model):
        """Convert `model`: a `CausalLM`, a preset directory, or a handle.

        Args:
            model: a keras-hub `CausalLM` object (or a bare backbone: then
                the result has no preprocessor); or a preset, a local
                directory saved with `save_to_preset()` (or a Hugging Face
                checkpoint folder keras-hub can read), or a `kaggle://` /
                `hf://` handle or built-in preset name (needs the network).

        Returns:
            A `DiffusionDecoder`.
        """
        import keras_hub

        if isinstance(model, (str, os.PathLike)):
            model = load_causal_lm(os.fspath(model))
        if isinstance(model, keras_hub.models.Backbone):
            backbone = model
        else:
            backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise ValueError(
                "`convert()` takes a keras-hub `CausalLM` (or its backbone), "
                "a preset directory or a handle. Received: "
                f"{type(model).__name__}."
            )
        attention_lib.check_backbone(backbone)
        preprocessor = self._preprocessor(model, backbone)  # Checked before any copy.
        noise = None
        if self.add_mask_token:
            backbone, mask_token_id = with_mask_token(backbone)
            noise = MaskNoise(mask_token_id)
        elif self.copy:
            backbone = copy_backbone(backbone)
        if self.lora_rank is not None:
            lora_lib.enable_lora(backbone, self.lora_rank)
        return DiffusionDecoder(
            backbone,
            preprocessor,
            attention=self.attention,
            block_size=self.block_size,
            noise=noise,
            sampler=self.sampler,
            shifted_prediction=self.shifted_prediction,
            annealing_steps=self.annealing_steps,
        )

    def _preprocessor(self, model, backbone):
        """The `DiffusionPreprocessor` for `backbone`, on `model`'s tokenizer.

        A `sequence_length` given to the converter must fit the backbone's
        position table (rotary backbones have none: any length holds); the
        AR preprocessor's own is cut to the table, as the AR model is.
        """
        if self.sequence_length is not None:
            check_sequence_length(backbone, self.sequence_length)
        ar_preprocessor = getattr(model, "preprocessor", None)
        tokenizer = getattr(ar_preprocessor, "tokenizer", None)
        if tokenizer is None:
            return None
        check_vocabulary(backbone, tokenizer)
        sequence_length = self.sequence_length or getattr(
            ar_preprocessor, "sequence_length", None
        )
        limit = getattr(backbone, "max_sequence_length", None)
        if sequence_length is None or (limit and sequence_length > limit):
            sequence_length = limit or 1024
        return DiffusionPreprocessor(
            tokenizer,
            sequence_length=sequence_length,
            target_length=self.target_length,
            separator=self.separator,
        )


def load_causal_lm(preset):
    """Load an AR `CausalLM` preset, with errors that say what to do.

    A local directory is checked first (a keras-hub preset needs a backbone
    `config.json`); for a handle the network is needed, and its failure is
    reported with the offline alternative.
    """
    import keras_hub

    is_local = os.path.isdir(preset)
    if not is_local and os.path.sep in preset and "://" not in preset:
        raise ValueError(
            f"No preset directory at {preset!r}. Pass a directory saved with "
            "`save_to_preset()`, or a `kaggle://` / `hf://` handle."
        )
    if is_local:
        _check_local_preset(preset)
    try:
        return keras_hub.models.CausalLM.from_preset(preset)
    except (ValueError, FileNotFoundError) as error:
        if is_local:
            raise ValueError(f"Could not load the preset at {preset!r}: {error}") from error
        raise ValueError(
            f"Could not load the preset {preset!r}: {error}\n"
            "If this is a download and the machine is offline, load it once "
            "where the network is, save it with "
            "`keras_hub.models.CausalLM.from_preset(...).save_to_preset(dir)` "
            "and pass that local directory instead."
        ) from error
    except Exception as error:  # Network errors come in many types.
        if is_local:
            raise
        raise ValueError(
            f"Could not download the preset {preset!r} "
            f"({type(error).__name__}: {error}). The network may be "
            "unreachable. Offline, pass a local preset directory instead: one "
            "saved with `save_to_preset(dir)` where the network is."
        ) from error


def _check_local_preset(preset):
    import json

    config_path = os.path.join(preset, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(
            f"{preset!r} is not a keras-hub preset: it has no `config.json`. "
            "Save one with `causal_lm.save_to_preset(dir)`."
        )
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{config_path!r} is not valid JSON ({error}); the preset looks "
            "corrupt. Save it again with `save_to_preset()`."
        ) from error
    # keras-hub presets name their backbone class; Hugging Face folders
    # (config.json + safetensors) name a `model_type` that keras-hub maps.
    name = config.get("class_name") or config.get("registered_name", "")
    name = name.split(">")[-1]
    if name and not _is_supported_class(config, name):
        raise ValueError(attention_lib.unsupported_message(name))
    if not name and "model_type" in config:
        architectures = config.get("architectures") or [config["model_type"]]
        if not any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in architectures):
            raise ValueError(
                attention_lib.unsupported_message(
                    f"The Hugging Face model {architectures[0]!r}"
                )
            )


def _is_supported_class(config, name):
    """Whether the backbone class a preset's config names is supported.

    The class is looked up where Keras registered it (`registered_name`,
    e.g. `keras_textdiff>GGUFLlamaBackbone`), so a subclass of a supported
    backbone is supported, as `attention.check_backbone` has it for objects.
    """
    import keras_hub

    names = attention_lib.supported_backbone_names()
    cls = keras.saving.get_registered_object(config.get("registered_name") or name)
    if not isinstance(cls, type):
        return name in names
    return issubclass(cls, tuple(getattr(keras_hub.models, n) for n in names))


def copy_backbone(backbone, **config_overrides):
    """A new backbone of the same class with a copy of `backbone`'s weights."""
    config = {**backbone.get_config(), **config_overrides}
    clone = type(backbone).from_config(config)
    clone.set_weights(backbone.get_weights())
    return clone


def with_mask_token(backbone):
    """Copy `backbone` with one extra vocabulary entry, the mask token.

    The new embedding row (and output column, for untied heads) is the mean
    of the existing ones, a common choice that keeps the new token's logits
    and hidden states in the usual range. Every other weight is copied, so
    the logits of ordinary tokens are unchanged.

    Returns:
        `(new_backbone, mask_token_id)`; the id is the old vocabulary size.
    """
    vocabulary_size = backbone.vocabulary_size
    grown = type(backbone).from_config(
        {**backbone.get_config(), "vocabulary_size": vocabulary_size + 1}
    )
    for old, new in zip(backbone.weights, grown.weights):
        value = keras.ops.convert_to_numpy(old)
        if tuple(old.shape) != tuple(new.shape):
            axis = next(
                i for i, (a, b) in enumerate(zip(old.shape, new.shape)) if a != b
            )
            mean = value.mean(axis=axis, keepdims=True)
            value = np.concatenate([value, mean], axis=axis)
        new.assign(value)
    return grown, vocabulary_size


def adapt(
    model,
    texts,
    steps,
    batch_size=8,
    seed=0,
    lora_rank=None,
    callbacks=None,
    verbose="auto",
):
    """AR2Diff_N's middle step: continue pretraining with the diffusion loss.

    The paper converts an AR model, trains it `N` more steps on its
    pretraining corpus with the diffusion objective (prefix-LM splits of raw
    text), then fine-tunes (PAPER.md, "AR2Diff_N"). This runs those `N`
    steps with `fit()`: each example is a random window of a text, split at
    a random point into prefix and target by the `DiffusionPreprocessor`.

    Args:
        model: a `DiffusionDecoder` (for instance from `AR2DiffConverter`),
            with a preprocessor. Compiled with the defaults if it is not.
        texts: a list of strings (the corpus).
        steps: int >= 1, the `N` of AR2Diff_N.
        batch_size: int.
        seed: int, seed of the shuffle.
        lora_rank: int >= 1 or `None`. Train LoRA updates of the attention
            only (`keras_textdiff.lora.enable_lora`), enabled here, before
            training; the model must not have trained yet. They stay
            separate afterwards (a later `fit()` trains them further): call
            `keras_textdiff.lora.merge_lora(model.backbone)` before saving.
        callbacks, verbose: passed to `fit()`.

    Returns:
        The `History` of the run.

    Example:
    ```python
    model = keras_textdiff.AR2DiffConverter().convert("./my_ar_preset")
    keras_textdiff.ar2diff.adapt(model, corpus_texts, steps=1000)
    model.fit(task_pairs, epochs=3)  # Then fine-tune.

    # With LoRA, then merged for saving:
    keras_textdiff.ar2diff.adapt(model, corpus_texts, steps=1000, lora_rank=8)
    keras_textdiff.lora.merge_lora(model.backbone)
    model.save_to_preset("./adapted")
    ```
    """
    from keras_textdiff.data.pipeline import text_dataset

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an int >= 1. Received: {steps!r}")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("`texts` holds no non-empty strings to adapt on.")
    if model.preprocessor is None:
        raise ValueError(
            "Adapting on raw text needs a `DiffusionPreprocessor` on the model."
        )
    if lora_lib.check_lora_rank(lora_rank) is not None:
        if model.compiled and model.optimizer.built:
            raise ValueError(
                "`lora_rank`: this model has trained already, and its "
                "optimizer holds every weight. Enable LoRA on a model before "
                "its first training step (or pass `lora_rank` to "
                "`AR2DiffConverter`)."
            )
        lora_lib.enable_lora(model.backbone, lora_rank)
    if not model.compiled:
        model.compile()
    dataset = text_dataset(
        texts, model.preprocessor, batch_size, seed=seed, repeat=True, verbose=False
    )
    # `keras.Model.fit`: the batches are already preprocessed (keras-hub's
    # `Task.fit` would run the preprocessor on them again).
    return keras.Model.fit(
        model,
        dataset,
        steps_per_epoch=steps,
        epochs=1,
        shuffle=False,  # Shuffled above, with a seed.
        callbacks=callbacks,
        verbose=verbose,
    )
