"""LoRA for keras-hub backbones: train low-rank updates, save plain weights.

`enable_lora` freezes a backbone and adds trainable low-rank factors to its
attention query and value projections, with keras-hub's own
`Backbone.enable_lora` (Keras' `Dense` / `EinsumDense` layers compute
`kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`).
`merge_lora` folds the trained factors into the kernels and turns LoRA off,
so the model saves, and reloads, as an ordinary model of the same size:
a preset saved after LoRA training holds the merged weights, and its
config does not ask for LoRA at load time.

Example:
```python
model = keras_textdiff.AR2DiffConverter().convert("./my_ar_preset")
keras_textdiff.lora.enable_lora(model.backbone, rank=8)
model.compile()  # After enabling: only the LoRA factors train.
model.fit(texts, epochs=1)
keras_textdiff.lora.merge_lora(model.backbone)
model.save_to_preset("./adapted")  # Plain weights; loads without LoRA.
```
"""

import keras
from keras import ops


def check_lora_rank(rank, optional=True):
    """Return `rank` if it is a LoRA rank, an int >= 1 (or, if `optional`,
    `None`: no LoRA); raise a `ValueError` naming `lora_rank` otherwise."""
    if rank is None and optional:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(
            "`lora_rank` must be an int >= 1 (the rank of the low-rank "
            f"update, e.g. 4, 8 or 16), or None for no LoRA. Received: {rank!r}"
        )
    return rank


def enable_lora(backbone, rank, layers=None):
    """Freeze `backbone` and train rank-`rank` updates of its projections.

    Calls keras-hub's `backbone.enable_lora(rank)`, which freezes every
    weight and adds trainable factors `lora_kernel_a` and `lora_kernel_b`
    to the attention query and value projections (the layers
    `backbone.default_lora_layer_names()` names), or to the layers named
    in `layers`. The biases of those projections are frozen too (keras-hub
    leaves them trainable), so the LoRA factors are the only trainable
    weights. Compile the model after this call; before saving, call
    `merge_lora`.

    Args:
        backbone: a `keras_hub.models.Backbone`, built.
        rank: int >= 1, the rank of the updates.
        layers: `None` (keras-hub's default: query and value), `"all"`
            (every dense projection of the transformer layers: attention
            and feed-forward), or a list of layer names.

    Returns:
        `backbone`.

    Example:
    ```python
    causal_lm = keras_hub.models.CausalLM.from_preset("./my_ar_preset")
    enable_lora(causal_lm.backbone, rank=4)
    causal_lm.compile(optimizer="adamw")
    ```
    """
    check_lora_rank(rank, optional=False)
    if not callable(getattr(backbone, "enable_lora", None)):
        raise ValueError(
            "LoRA needs a keras-hub backbone (`keras_hub.models.Backbone`, "
            f"which has `enable_lora`). Received: {type(backbone).__name__}. "
            "Pass `model.backbone` of a keras-hub `CausalLM` or "
            "`DiffusionDecoder`."
        )
    backbone.enable_lora(rank, target_layer_names=_layer_names(backbone, layers))
    layers = lora_layers(backbone)
    if not layers:
        raise ValueError(
            f"{type(backbone).__name__} has no layer named "
            f"{backbone.default_lora_layer_names()} to put LoRA on."
        )
    for layer in layers:
        factors = {id(v) for v in _factors(layer)}
        for variable in layer.trainable_weights:
            if id(variable) not in factors:
                variable.trainable = False
    return backbone


def _layer_names(backbone, layers):
    """keras-hub's `target_layer_names` for `layers` (see `enable_lora`)."""
    if layers is None:
        return None
    if layers == "all":
        return sorted({
            layer.name
            for layer in backbone._flatten_layers(include_self=False)
            if hasattr(layer, "enable_lora")
            and not isinstance(layer, keras.layers.Embedding)
        })
    if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
        raise ValueError(
            '`layers` must be None, "all" or a list of layer names. '
            f"Received: {layers!r}"
        )
    return list(layers)


def merge_lora(backbone):
    """Fold the LoRA updates into the kernels and turn LoRA off.

    Each LoRA layer's kernel becomes `kernel + (lora_alpha / lora_rank) *
    lora_kernel_a @ lora_kernel_b`, computed in float32 and stored in the
    kernel's dtype, and the layer stops adding the update: the backbone
    computes the same outputs as before, as a plain model. Saving it then
    writes the merged kernels, and the preset loads without LoRA. The spent
    factors stay in the model (`lora_kernel_b` zeroed, both frozen), so a
    function compiled before the merge still computes the same outputs;
    every other weight is trainable again, as before `enable_lora`. A
    backbone without LoRA is left as it is.

    Args:
        backbone: a `keras_hub.models.Backbone`.

    Returns:
        The number of layers merged.

    Example:
    ```python
    enable_lora(model.backbone, rank=8)
    model.compile()
    model.fit(texts)
    merge_lora(model.backbone)
    model.save_to_preset("./tuned")  # keras_hub ... .from_preset: no LoRA.
    ```
    """
    layers = lora_layers(backbone)
    if not layers:
        return 0
    for layer in layers:
        if layer.quantization_mode is not None:
            raise ValueError(
                f"Cannot merge LoRA into the {layer.quantization_mode}-"
                f"quantized layer {layer.path!r}: merge before quantizing."
            )
        kernel = layer._kernel  # The stored kernel; `layer.kernel` adds LoRA.
        update = ops.matmul(layer.lora_kernel_a, layer.lora_kernel_b)
        merged = ops.cast(kernel, "float32") + (layer.lora_alpha / layer.lora_rank) * update
        kernel.assign(ops.cast(merged, kernel.dtype))
        layer.lora_kernel_b.assign(ops.zeros(layer.lora_kernel_b.shape))
        layer.lora_enabled = False
    backbone.trainable = True
    for layer in layers:
        for variable in _factors(layer):
            variable.trainable = False
    return len(layers)


def lora_layers(backbone):
    """The layers of `backbone` that currently add a LoRA update."""
    return [
        layer
        for layer in backbone._flatten_layers(include_self=False)
        if getattr(layer, "lora_enabled", False)
    ]


def _factors(layer):
    return (layer.lora_kernel_a, layer.lora_kernel_b)
