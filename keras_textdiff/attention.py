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
- `"causal"`: the backbone's own mask (no override).
"""

import contextlib
import contextvars

from keras import ops

ATTENTION_MODES = ("bidirectional", "prefix", "causal")

# The decoder-layer methods that build the self-attention mask, by name.
_MASK_METHODS = ("_compute_self_attention_mask", "_compute_attention_mask")

_override = contextvars.ContextVar("keras_textdiff_attention", default=None)


def _supported_backbones():
    """Backbone classes whose attention switch is tested, by name."""
    import keras_hub

    names = ["GPT2Backbone", "GemmaBackbone", "LlamaBackbone"]
    return {name: getattr(keras_hub.models, name) for name in names}


def supported_backbone_names():
    return sorted(_supported_backbones())


def check_backbone(backbone):
    """Raise a `ValueError` unless `backbone`'s attention can be switched."""
    supported = _supported_backbones()
    if not any(isinstance(backbone, cls) for cls in supported.values()):
        raise ValueError(
            "`backbone` must be a keras-hub decoder-only backbone whose "
            "attention keras_textdiff can switch to bidirectional. Supported: "
            f"{', '.join(sorted(supported))}. Received: "
            f"{type(backbone).__name__}."
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


def check_mode(mode):
    if mode not in ATTENTION_MODES:
        raise ValueError(
            f"`attention` must be one of {ATTENTION_MODES}. Received: {mode!r}"
        )


def attention_mask(mode, padding_mask, target_mask=None):
    """Build the `[batch, query, key]` mask for an attention `mode`.

    Args:
        mode: one of `"bidirectional"`, `"prefix"`, `"causal"`.
        padding_mask: `[batch, length]`, true for real (non-padding) tokens.
        target_mask: `[batch, length]`, true for target positions. Needed for
            `"prefix"` only.

    Returns:
        An int32 mask, or `None` for `"causal"` (the backbone's own mask).
    """
    check_mode(mode)
    if mode == "causal":
        return None
    valid = ops.cast(padding_mask, "bool")
    if mode == "prefix":
        if target_mask is None:
            raise ValueError(
                '`attention="prefix"` needs a `target_mask` marking the '
                "target positions; got None."
            )
        is_target = ops.cast(target_mask, "bool")
        # A query sees a key if the query is a target or the key is prefix.
        queries, keys = is_target[:, :, None], ~is_target[:, None, :]
    else:
        queries, keys = valid[:, :, None], valid[:, None, :]
    keys = ops.logical_and(ops.logical_or(queries, keys), valid[:, None, :])
    return ops.cast(keys, "int32")


def backbone_logits(backbone, token_ids, padding_mask, mask):
    """Run `backbone` with attention `mask` and project to vocabulary logits."""
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}
    with attention_mask_override(mask):
        hidden = backbone(inputs)
    logits = backbone.token_embedding(hidden, reverse=True)
    return ops.cast(logits, "float32")
