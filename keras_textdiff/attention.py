"""Switch a keras-hub decoder-only backbone from causal to bidirectional attention.

Every keras-hub decoder layer builds its own causal mask in one method
(`_compute_self_attention_mask` or `_compute_attention_mask`). We wrap that
method on each layer *instance* so that, inside `attention_mask_override(mask)`,
it returns our mask instead. Outside the context the layers behave exactly as
before, so an autoregressive `CausalLM` that shares the same layers (AR2Diff
shares weights) stays causal.

Masks are `[batch, query, key]` integer tensors, 1 where attention is allowed:

- `"bidirectional"`: every position attends to every non-padding position
  (the paper's choice, Section 3).
- `"prefix"`: prefix positions attend only to the prefix; target positions
  attend to everything. The prompt's keys then never depend on the target,
  so a decoder may compute them once.
- `"block"`: the prefix attends causally, exactly as in the AR model it came
  from; the target is cut into blocks of `block_size` positions, each
  attending to the prefix, to earlier blocks, and inside itself both ways,
  never to later blocks (block diffusion: BD3-LM, SDAR, Fast-dLLM v2). With
  one block covering the target, the prefix keeps its AR hidden states and
  only the target is bidirectional.
- `"causal"`: the backbone's own mask (no override).
"""

import contextlib
import contextvars

import keras
from keras import ops

ATTENTION_MODES = ("bidirectional", "prefix", "block", "causal")

# The decoder-layer methods that build the self-attention mask, by name.
_MASK_METHODS = ("_compute_self_attention_mask", "_compute_attention_mask")

_override = contextvars.ContextVar("keras_textdiff_attention", default=None)


# Decoder-only keras-hub backbones whose attention switch is tested (see
# tests/tiny_models.py), with the model families they cover. Left out on
# purpose: recurrent or linear-attention models (RWKV7, Qwen3.5's gated
# delta-net layers), whose causality is not a mask; multimodal ones
# (PaliGemma, BLIP-2, Gemma 3n, Gemma 4); encoders and seq2seq models.
SUPPORTED_BACKBONES = {
    "BloomBackbone": "Bloom",
    "FalconBackbone": "Falcon",
    "GPT2Backbone": "GPT-2",
    "GPTNeoXBackbone": "GPT-NeoX, Pythia",
    "Gemma3Backbone": "Gemma 3 (text only)",
    "GemmaBackbone": "Gemma, Gemma 2",
    "GptOssBackbone": "gpt-oss",
    "Llama3Backbone": "Llama 3, SmolLM2",
    "LlamaBackbone": "Llama, Llama 2",
    "MistralBackbone": "Mistral",
    "MixtralBackbone": "Mixtral",
    "OPTBackbone": "OPT",
    "Phi3Backbone": "Phi-3",
    "Qwen3Backbone": "Qwen 3",
    "Qwen3MoeBackbone": "Qwen 3 MoE",
    "QwenBackbone": "Qwen, Qwen 2, Qwen 2.5",
    "QwenMoeBackbone": "Qwen MoE",
    "SmolLM3Backbone": "SmolLM 3",
}


def _supported_backbones():
    import keras_hub

    return {
        name: getattr(keras_hub.models, name)
        for name in SUPPORTED_BACKBONES
        if hasattr(keras_hub.models, name)
    }


def supported_backbone_names():
    """The keras-hub backbone classes AR2Diff can convert, by name."""
    return sorted(_supported_backbones())


def unsupported_message(name):
    families = ", ".join(
        f"{cls} ({SUPPORTED_BACKBONES[cls]})" for cls in supported_backbone_names()
    )
    return (
        f"{name} is not a decoder-only keras-hub backbone whose attention "
        "keras_textdiff can switch to bidirectional (encoder-only, seq2seq, "
        "multimodal and recurrent models are not). Supported: " + families + "."
    )


def check_backbone(backbone):
    """Raise a `ValueError` unless `backbone`'s attention can be switched."""
    supported = _supported_backbones()
    if not any(isinstance(backbone, cls) for cls in supported.values()):
        raise ValueError(unsupported_message(type(backbone).__name__))
    if getattr(backbone, "vision_encoder", None) is not None:
        raise ValueError(
            f"{type(backbone).__name__} has a vision encoder; AR2Diff converts "
            "text-only models. Use the text-only preset (for Gemma 3, the "
            "`*_text` presets or `vision_encoder=None`)."
        )


def make_switchable(backbone):
    """Wrap the mask method of every decoder layer of `backbone` (idempotent).

    Weights are untouched and shared; only the Python method is wrapped.
    """
    check_backbone(backbone)
    for layer in backbone.transformer_layers:
        name = next(n for n in _MASK_METHODS if hasattr(layer, n))
        original = getattr(layer, name)
        if getattr(original, "_keras_textdiff_wrapped", False):
            continue

        def method(*args, _original=original, **kwargs):
            mask = _override.get()
            return _original(*args, **kwargs) if mask is None else mask

        method._keras_textdiff_wrapped = True
        # `object.__setattr__` skips Keras/torch attribute tracking.
        object.__setattr__(layer, name, method)


@contextlib.contextmanager
def attention_mask_override(mask):
    """Within this context, switched decoder layers attend with `mask`.

    `mask=None` keeps each layer's own (causal) mask.
    """
    token = _override.set(mask)
    try:
        yield
    finally:
        _override.reset(token)


def check_mode(mode, block_size=None, target_length=None):
    """Raise a clear error for an unknown mode or a bad `block_size` (for a
    fixed `target_length`, blocks must tile it)."""
    if mode not in ATTENTION_MODES:
        raise ValueError(
            f"`attention` must be one of {ATTENTION_MODES}. Received: {mode!r}"
        )
    if mode == "block":
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(
                '`attention="block"` needs `block_size`, an int >= 1 (the '
                "target positions per block; the target length for one "
                f"block). Received: block_size={block_size!r}"
            )
        if isinstance(target_length, int) and block_size < target_length \
                and target_length % block_size:
            raise ValueError(
                f"`block_size` must divide the target length, so that blocks "
                f"tile it (or be >= it, for one block). Received: "
                f"block_size={block_size}, target_length={target_length}"
            )
    elif block_size is not None:
        raise ValueError(
            f'`block_size` applies to `attention="block"` only, not '
            f"{mode!r}. Received: block_size={block_size!r}"
        )


def _positions(mask):
    """0, 1, 2, ... along axis 1, shaped like `mask` (symbolic lengths too)."""
    return ops.cumsum(ops.ones_like(mask, dtype="int32"), axis=1) - 1


def block_ids(target_mask, block_size):
    """Each position's block: -1 outside the target, 0, 1, ... on it.

    Blocks count each row's target positions from its own first one, so the
    model's blocks (`attention="block"`), block-diffusion training's blocks
    and the sampler's blocks are the same positions.
    """
    is_target = ops.cast(target_mask, "bool")
    # Target positions counted from the first one: 1, 2, ...
    rank = ops.cumsum(ops.cast(is_target, "int32"), axis=1)
    return ops.where(is_target, (rank - 1) // block_size, -1)


def attention_mask(mode, padding_mask, target_mask=None, block_size=None):
    """Build the `[batch, query, key]` mask for an attention `mode`.

    Args:
        mode: one of `ATTENTION_MODES`.
        padding_mask: `[batch, length]`, true for real (non-padding) tokens.
        target_mask: `[batch, length]`, true for target positions. Needed for
            `"prefix"` and `"block"`.
        block_size: int, for `"block"`.

    Returns:
        An int32 mask, or `None` for `"causal"` (the backbone's own mask).
    """
    check_mode(mode, block_size)
    if mode == "causal":
        return None
    valid = ops.cast(padding_mask, "bool")
    if mode in ("prefix", "block") and target_mask is None:
        raise ValueError(
            f'`attention="{mode}"` needs a `target_mask` marking the '
            "target positions; got None."
        )
    if mode == "block":
        block = block_ids(target_mask, block_size)
        query_block, key_block = block[:, :, None], block[:, None, :]
        positions = _positions(block)
        causal = positions[:, :, None] >= positions[:, None, :]
        is_target = ops.cast(target_mask, "bool")[:, :, None]
        # Earlier blocks (the prefix is block -1), or the same block: both
        # ways inside a target block, causally inside the prefix.
        same = ops.logical_and(
            query_block == key_block, ops.logical_or(is_target, causal)
        )
        keys = ops.logical_or(key_block < query_block, same)
        return ops.cast(ops.logical_and(keys, valid[:, None, :]), "int32")
    if mode == "prefix":
        is_target = ops.cast(target_mask, "bool")
        # A query sees a key if the query is a target or the key is prefix.
        queries, keys = is_target[:, :, None], ~is_target[:, None, :]
    else:
        queries, keys = valid[:, :, None], valid[:, None, :]
    keys = ops.logical_and(ops.logical_or(queries, keys), valid[:, None, :])
    return ops.cast(keys, "int32")


def causal_mask(padding_mask):
    """The autoregressive `[batch, query, key]` mask (keys at or before query)."""
    valid = ops.cast(padding_mask, "bool")
    length = ops.shape(valid)[1]
    positions = ops.arange(length)
    causal = positions[None, :, None] >= positions[None, None, :]
    return ops.logical_and(causal, valid[:, None, :])


def annealed_mask(mask, padding_mask, visibility, seed=None):
    """Attention-mask annealing (DiffuGPT): causal OR Bernoulli(visibility).

    Each attention link outside the causal mask is opened with probability
    `visibility`, within `mask`. `visibility = 0` gives the causal mask,
    `visibility = 1` gives `mask` itself; ramping it from 0 to 1 eases an AR
    model into bidirectional attention.

    Args:
        mask: the target `[batch, query, key]` mask (bidirectional or prefix).
        padding_mask: `[batch, length]`.
        visibility: float scalar in `[0, 1]` (a tensor is fine).
        seed: a `keras.random.SeedGenerator` or int for the Bernoulli draw.
    """
    opened = keras.random.uniform(ops.shape(mask), seed=seed) < visibility
    allowed = ops.logical_or(causal_mask(padding_mask), opened)
    return ops.cast(ops.logical_and(ops.cast(mask, "bool"), allowed), "int32")


def backbone_logits(
    backbone, token_ids, padding_mask, mask, start=0, size=None, positions=None
):
    """Run `backbone` with attention `mask` and project to vocabulary logits.

    With `size`, only positions `start, ..., start + size - 1` are projected
    (`start` may be a scalar tensor): the projection is the costliest matrix
    product of a small model with a large vocabulary. With `positions` (int
    `[batch, window]`), only those positions of each row are projected, in
    that order. The logits keep the
    backbone's compute dtype: a float32 copy of `[batch, length, vocab]`
    costs a decoding step more than its argmax does (callers that need
    float32, such as softmaxes, cast).
    """
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}
    with attention_mask_override(mask):
        hidden = backbone(inputs)
    if size is not None:
        batch, _, width = ops.shape(hidden)
        hidden = ops.slice(hidden, [0, start, 0], [batch, size, width])
    if positions is not None:
        batch, window = ops.shape(positions)
        index = ops.broadcast_to(
            ops.cast(positions, "int32")[:, :, None],
            (batch, window, ops.shape(hidden)[-1]),
        )
        hidden = ops.take_along_axis(hidden, index, axis=1)
    return backbone.token_embedding(hidden, reverse=True)


@keras.saving.register_keras_serializable(package="keras_textdiff")
class AttentionAnnealing(keras.layers.Layer):
    """Ramp attention from causal to `mask` over `steps` training steps.

    DiffuGPT's attention-mask annealing for AR-to-diffusion adaptation: at
    training step `s` each non-causal link is open with probability
    `min(s / steps, 1)` (see `annealed_mask`). Outside training the full
    `mask` is used. The step counter is a (saved) non-trainable weight,
    advanced once per training call.

    Args:
        steps: int >= 1, training steps until attention is fully open.
        seed: int or `None`, seed of the Bernoulli draws.
    """

    def __init__(self, steps, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"`annealing_steps` must be an int >= 1. Received: {steps!r}"
            )
        self.steps = steps
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.step = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="step"
        )

    def visibility(self):
        return ops.minimum(self.step / self.steps, 1.0)

    def call(self, mask, padding_mask, training=False):
        if not training:
            return mask
        visibility = self.visibility()
        self.step.assign(self.step + 1.0)
        return annealed_mask(mask, padding_mask, visibility, self.seed_generator)

    def get_config(self):
        config = super().get_config()
        config.update({"steps": self.steps, "seed": self.seed})
        return config
