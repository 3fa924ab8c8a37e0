"""Logits for a window of positions, optionally against a key/value cache.

A diffusion step needs new logits only where tokens can still change: the
target (not the prompt), and with semi-autoregressive blocks only the current
block. `WindowedLogits` computes them for a fixed-size window of positions:

- without a cache, the backbone still runs over the whole sequence, but only
  the window is projected to the vocabulary (the projection is the costliest
  single matrix product of a small model with a large vocabulary);
- with a cache, only the window runs through the backbone, attending to the
  keys and values of every other position kept from earlier steps.

The cache reuses keras-hub's own machinery: every keras-hub `CausalLM` has a
`call_with_cache(token_ids, cache, cache_update_index)` for autoregressive
`generate()`, and its decoder layers build their attention mask in the method
that `attention.make_switchable` wraps. Under `attention_mask_override` that
same code attends with the diffusion model's mask, for all supported
architectures.

Exactness: with `attention="prefix"` the prompt attends only to the prompt,
so its cached keys and values are exact for every step. With
`attention="block"` and the sampler's blocks the model's (the same
`block_size`), the prompt and each finished block attend only to themselves
and to what came before, which no longer changes: their keys and values,
computed once more after the block finished, are exact. With bidirectional
attention every key depends on every token, and the cache is an approximation
(Fast-dLLM's): keys of positions outside the window are those of the last
time they were computed.
"""

import inspect

import keras_hub
from keras import ops

from keras_textdiff import attention as attention_lib


def causal_lm_class(backbone):
    """The keras-hub `CausalLM` class built on `backbone`'s class.

    Picks the most specific match, so a subclassed backbone (say, our GGUF
    Llama) finds its parent's task.
    """
    candidates = [
        cls
        for cls in vars(keras_hub.models).values()
        if isinstance(cls, type)
        and issubclass(cls, keras_hub.models.CausalLM)
        and isinstance(getattr(cls, "backbone_cls", None), type)
        and isinstance(backbone, cls.backbone_cls)
        and hasattr(cls, "call_with_cache")
    ]
    if not candidates:
        raise ValueError(
            f"No keras-hub CausalLM with a key/value cache for "
            f"{type(backbone).__name__}: decode without `cache=True`."
        )
    mro = type(backbone).__mro__
    return min(candidates, key=lambda cls: mro.index(cls.backbone_cls))


def cached_task(model):
    """An AR keras-hub task sharing `model.backbone`, for `call_with_cache`.

    Built once (eagerly, outside any compiled function) and kept on `model`
    without Keras tracking it: its variables are the backbone's own.
    """
    task = getattr(model, "_keras_textdiff_cached_task", None)
    if task is None:
        task = causal_lm_class(model.backbone)(backbone=model.backbone, preprocessor=None)
        object.__setattr__(model, "_keras_textdiff_cached_task", task)
    return task


class WindowedLogits:
    """Logits of `window` consecutive positions of a `DiffusionDecoder`.

    Args:
        model: the `DiffusionDecoder`.
        padding_mask, target_mask: `[batch, length]`.
        window: int, the static number of positions per call.
        use_cache: bool, run only the window against a key/value cache.
    """

    def __init__(self, model, padding_mask, target_mask, window, use_cache):
        self.model = model
        self.padding_mask = padding_mask
        self.window = window
        self.use_cache = use_cache
        self.mask = model.attention_mask(padding_mask, target_mask)
        self.task = cached_task(model) if use_cache else None

    def initial_cache(self, token_ids):
        """Keys and values of every position of `token_ids` (or a dummy)."""
        if not self.use_cache:
            return ops.zeros((), "float32")
        # Some tasks' cache builders take image inputs too (Gemma 3): text
        # only here, so those are `None`.
        parameters = inspect.signature(self.task._build_cache).parameters
        extra = {name: None for name in list(parameters)[1:]}
        with attention_lib.attention_mask_override(self.mask):
            _, cache = self.task._build_cache(token_ids, **extra)
        return cache

    def __call__(self, token_ids, start, cache):
        """Logits `[batch, window, vocab]` of positions `start, ...`.

        `start` (a scalar tensor is fine) must satisfy
        `0 <= start <= length - window`. Returns `(logits, cache)`, the
        logits in the backbone's compute dtype (a float32 copy of them cost
        more than a step's argmax on CPU); with a cache, the window's keys
        and values are updated in it.
        """
        batch, length = ops.shape(token_ids)
        start = ops.cast(start, "int32")
        if self.use_cache:
            ids = ops.slice(token_ids, [0, start], [batch, self.window])
            mask = self.mask
            if mask is not None:
                mask = ops.slice(mask, [0, start, 0], [batch, self.window, length])
            with attention_lib.attention_mask_override(mask):
                logits, _, cache = self.task.call_with_cache(ids, cache, start)
        else:
            logits = attention_lib.backbone_logits(
                self.model.backbone, token_ids, self.padding_mask, self.mask,
                start, self.window,
            )
        # With shifted prediction the window's first position reads its own
        # output: callers never update that position (see DiffusionSampler).
        return self.model.finish_logits(logits), cache
