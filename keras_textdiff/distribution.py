"""Train and decode on many devices with Keras' own distribution API (JAX).

Two ways to spread one job over the accelerators of a TPU VM, a multi-GPU
host, or several hosts (after `keras.distribution.initialize()`):

- **Data parallel** (`data_parallel()`): every device holds all the weights
  and a slice of each batch; gradients are averaged across devices. Use it
  while the model fits on one device.
- **Model parallel** (`model_parallel(backbone, "BATCHxMODEL")`): the devices
  form a 2-D mesh with axes `"batch"` and `"model"`. Each batch is split over
  `"batch"`; the large weights are split over `"model"` (keras-hub's own
  layout maps split them over `"batch"` as well, FSDP-style) by a
  `keras.distribution.LayoutMap` for the backbone's architecture
  (`layout_map()`; `LAYOUT_SOURCES` says which map each backbone uses).

Nothing else changes: set the distribution, then create the model (its
variables get their layouts when they are created), then `fit()`,
`generate()` and `save_to_preset()` as on one device. Presets and run
checkpoints hold plain arrays, so they load on any number of devices.

```python
import keras_textdiff as ktd
from keras_textdiff.distribution import distributed

with distributed("2x4", "./my_preset", batch_size=32):   # or "data"
    model = ktd.DiffusionDecoder.from_preset("./my_preset")
    model.compile(optimizer="adamw")
    model.fit(dataset, steps_per_epoch=100)
    model.generate(["def fibonacci(n):"], max_length=128)
```

Command line: `--data-parallel` or `--model-parallel BATCHxMODEL` on
`textdiff pretrain | adapt | finetune | evaluate | generate`.

Only the JAX backend is supported (Keras' distribution API is JAX-only).
"""

import collections
import contextlib
import functools
import inspect
import math
import re
import warnings

import keras

BATCH = "batch"
MODEL = "model"

# --- layout maps -------------------------------------------------------------

# One entry per architecture: `keras_hub` names the keras-hub backbone whose
# own `get_layout_map()` is used (possibly another class with the same weight
# paths), and `rules` add `(path regex, axes)` for weights that map leaves out
# (untied output embeddings, mixture-of-experts weights) or, with no keras-hub
# map, make the whole map. Our own maps split over `"model"` only, in the
# Megatron style: query/key/value and the first feed-forward kernel by output
# (heads, intermediate), the attention output and second feed-forward kernel
# by input, token embeddings by the hidden axis (vocabularies such as GPT-2's
# 50257 are odd). keras-hub's maps split the token embedding by vocabulary.
_Layout = collections.namedtuple("_Layout", ["keras_hub", "rules"])

_L = r"transformer_layer_\d+/"
_M, _B = MODEL, BATCH

_GPT_STYLE_FEEDFORWARD = (
    (_L + r"feedforward_intermediate_dense/kernel", (None, _M)),
    (_L + r"feedforward_intermediate_dense/bias", (_M,)),
    (_L + r"feedforward_output_dense/kernel", (_M, None)),
)
_UNTIED_OUTPUT = (("token_embedding/reverse_embeddings", (_B, _M)),)


def _experts(block, gate_up, down):
    """keras-hub-style rules for stacked expert kernels `[experts, in, out]`."""
    prefix = _L + block + r"(_\d+)?/experts/"  # Later blocks get a suffix.
    return (
        (prefix + gate_up, (None, _B, _M)),
        (prefix + down, (None, _M, _B)),
    )


LAYOUTS = {
    "GPT2Backbone": _Layout(None, (
        (r"(embeddings/)?token_embedding/embeddings", (None, _M)),
        (_L + r"self_attention/(query|key|value)/kernel", (None, _M, None)),
        (_L + r"self_attention/(query|key|value)/bias", (_M, None)),
        (_L + r"self_attention/attention_output/kernel", (_M, None, None)),
        *_GPT_STYLE_FEEDFORWARD,
    )),
    "GPTNeoXBackbone": _Layout(None, (
        (r"token_embedding/embeddings", (None, _M)),
        (_L + r"self_attention/query_key_value/kernel", (None, _M, None)),
        (_L + r"self_attention/query_key_value/bias", (_M, None)),
        (_L + r"self_attention/attention_output/kernel", (_M, None)),
        *_GPT_STYLE_FEEDFORWARD,
    )),
    "FalconBackbone": _Layout(None, (
        (r"token_embedding/embeddings", (None, _M)),
        (_L + r"attention/(query|key|value)_dense/kernel", (None, _M, None)),
        (_L + r"attention/(query|key|value)_dense/bias", (_M, None)),
        (_L + r"attention/output_dense/kernel", (_M, None)),
        (_L + r"dense_h_to_4h/kernel", (None, _M)),
        (_L + r"dense_h_to_4h/bias", (_M,)),
        (_L + r"dense_4h_to_h/kernel", (_M, None)),
    )),
    "BloomBackbone": _Layout(None, (
        (r"token_embedding/embeddings", (None, _M)),
        (_L + r"self_attention/(query|key|value)_dense/kernel", (None, _M, None)),
        (_L + r"self_attention/(query|key|value)_dense/bias", (_M, None)),
        (_L + r"self_attention/output_dense/kernel", (_M, None)),
        (_L + r"mlp_intermediate_dense/kernel", (None, _M)),
        (_L + r"mlp_intermediate_dense/bias", (_M,)),
        (_L + r"mlp_output_dense/kernel", (_M, None)),
    )),
    "SmolLM3Backbone": _Layout(None, (
        (r"token_embedding/embeddings", (None, _M)),
        (_L + r"self_attn/(q|k|v)_proj/kernel", (None, _M)),
        # keras-hub creates these outside the layer's name scope.
        (r"(.*/)?o_proj/kernel", (_M, None, None)),
        (_L + r"mlp/(gate|up)_proj/kernel", (None, _M)),
        (_L + r"mlp/down_proj/kernel", (_M, None)),
    )),
    "GemmaBackbone": _Layout("GemmaBackbone", ()),
    "Gemma3Backbone": _Layout("GemmaBackbone", ()),  # Gemma's weight paths.
    "LlamaBackbone": _Layout("LlamaBackbone", _UNTIED_OUTPUT),
    "Llama3Backbone": _Layout("Llama3Backbone", _UNTIED_OUTPUT),
    "MistralBackbone": _Layout("LlamaBackbone", _UNTIED_OUTPUT),
    "MixtralBackbone": _Layout("LlamaBackbone", (
        *_UNTIED_OUTPUT,
        *_experts(
            "mixtral_sparse_moe_block",
            "expert_feedforward_(gate|intermediate)_dense",
            "expert_feedforward_output_dense",
        ),
    )),
    "Phi3Backbone": _Layout("LlamaBackbone", (
        *_UNTIED_OUTPUT,
        # Llama's query/key/value rule, for Phi-3's `attention/` scope.
        (_L + r"attention/(query|key|value)/kernel", (_M, _B, None)),
    )),
    "GptOssBackbone": _Layout("LlamaBackbone", (
        *_UNTIED_OUTPUT,
        *_experts("sparse_moe_block", "gate_up_proj", "down_proj"),
        (_L + r"sparse_moe_block(_\d+)?/experts/gate_up_proj_bias", (None, _M)),
    )),
    "QwenBackbone": _Layout("QwenBackbone", _UNTIED_OUTPUT),
    "Qwen3Backbone": _Layout("QwenBackbone", _UNTIED_OUTPUT),
    "QwenMoeBackbone": _Layout("QwenMoeBackbone", (
        *_UNTIED_OUTPUT,
        *_experts(
            "qwen_sparse_moe_block",
            "expert_feedforward_gate_dense",
            "expert_feedforward_output_dense",
        ),
    )),
    "Qwen3MoeBackbone": _Layout("Qwen3MoeBackbone", (
        *_UNTIED_OUTPUT,
        *_experts(
            "qwen3_sparse_moe_block",
            "expert_feedforward_gate_dense",
            "expert_feedforward_output_dense",
        ),
    )),
}
LAYOUTS["OPTBackbone"] = LAYOUTS["GPT2Backbone"]  # The same weight paths.

# Weights left replicated on purpose (small, or not worth a collective):
# layer norms, biases of row-split kernels, position tables, rotary
# frequencies, attention sinks, mixture-of-experts routers, random states.
REPLICATED = (
    r".*seed_generator.*",
    r".*norm[^/]*/(gamma|beta|scale)",
    r".*(/|_)bias",
    r"(embeddings/)?position_embedding/embeddings",
    r".*rotary_emb/inv_freq",
    r".*/sinks",
    r".*(router_dense|sparse_feedforward_gate_dense|shared_expert_gate_dense)/kernel",
)


def _layout_entry(cls):
    for base in cls.__mro__:
        if base.__name__ in LAYOUTS:
            return LAYOUTS[base.__name__]
    raise ValueError(
        f"No model-parallel layout map for {cls.__name__}. Layout maps exist "
        f"for: {', '.join(sorted(LAYOUTS))}. Use `data_parallel()` "
        "(`--data-parallel`), or build your own "
        "`keras.distribution.ModelParallel(layout_map=...)`."
    )


def layout_source(backbone):
    """Where `backbone`'s layout map comes from, in words."""
    entry = _layout_entry(backbone_class(backbone))
    if entry.keras_hub is None:
        return "keras_textdiff"
    extra = " + keras_textdiff rules" if entry.rules else ""
    return f"keras-hub {entry.keras_hub}.get_layout_map{extra}"


def layout_map(backbone, device_mesh):
    """The `keras.distribution.LayoutMap` for `backbone` on `device_mesh`.

    Args:
        backbone: a keras-hub backbone or `CausalLM` (class or instance), a
            class name (`"LlamaBackbone"`), or a preset directory or handle.
        device_mesh: a `keras.distribution.DeviceMesh` with axes `"batch"`
            and `"model"`.

    keras-hub's own `Backbone.get_layout_map()` is used where keras-hub has
    one for this weight layout (Gemma, Llama, Qwen and their relatives);
    see `LAYOUTS`.

    Example:
    ```python
    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"))
    layouts = layout_map(keras_hub.models.GPT2Backbone, mesh)
    ```
    """
    import keras_hub

    entry = _layout_entry(backbone_class(backbone))
    if entry.keras_hub is None:
        layouts = keras.distribution.LayoutMap(device_mesh)
    else:
        layouts = getattr(keras_hub.models, entry.keras_hub).get_layout_map(
            device_mesh, model_parallel_dim_name=MODEL, data_parallel_dim_name=BATCH
        )
    for pattern, axes in entry.rules:
        layouts[pattern] = axes
    return layouts


def variable_layouts(backbone, device_mesh=None):
    """How each variable of a built `backbone` would be laid out.

    Returns:
        `{path: axes}` where `axes` is a tuple of mesh axis names (or `None`)
        for weights the layout map covers, `"replicated"` for weights
        replicated on purpose (`REPLICATED`), and `None` for weights that no
        rule covers (a gap in the map).
    """
    if device_mesh is None:
        device_mesh = keras.distribution.DeviceMesh(
            (1, 1), (BATCH, MODEL), keras.distribution.list_devices()[:1]
        )
    layouts = layout_map(backbone, device_mesh)
    result = {}
    for variable in backbone.variables:
        layout = layouts[variable.path]
        if layout is not None:
            result[variable.path] = tuple(layout.axes)
        elif any(re.fullmatch(p, variable.path) for p in REPLICATED):
            result[variable.path] = "replicated"
        else:
            result[variable.path] = None
    return result


# --- checks ------------------------------------------------------------------


def check_backend():
    """Raise a `ValueError` unless Keras runs on JAX."""
    backend = keras.config.backend()
    if backend != "jax":
        raise ValueError(
            "Data- and model-parallel training and decoding use Keras' "
            "distribution API, which works on the JAX backend only; this "
            f"process runs Keras on {backend!r}. Set `KERAS_BACKEND=jax` "
            "before Keras is imported (the `textdiff` command does so unless "
            "KERAS_BACKEND is set), or leave out `--data-parallel` / "
            "`--model-parallel` to run on one device with any backend."
        )


def parse_mesh(mesh):
    """`"2x4"` or `(2, 4)` -> `(2, 4)`: the sizes of the batch and model axes."""
    if isinstance(mesh, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", mesh)
        sizes = tuple(int(g) for g in match.groups()) if match else None
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in mesh
    ):
        sizes = tuple(mesh)
    else:
        sizes = None
    if sizes is None or min(sizes) < 1:
        raise ValueError(
            "The model-parallel mesh must be BATCHxMODEL, two positive "
            "integers whose product divides the device count, e.g. '2x4' "
            f"(2-way data, 4-way model parallel). Received: {mesh!r}"
        )
    return sizes


def _shapes_for(count):
    return ", ".join(f"{b}x{count // b}" for b in range(1, count + 1) if count % b == 0)


def _mesh_devices(batch, model, devices):
    devices = list(devices)
    count, size = len(devices), batch * model
    if count % size:
        raise ValueError(
            f"A {batch}x{model} mesh needs {size} devices, which does not "
            f"divide the {count} device(s) here ({devices[0]}, ...). Use a "
            f"mesh whose BATCH x MODEL divides {count}, e.g. "
            f"{_shapes_for(count)}."
        )
    if size < count:
        warnings.warn(
            f"A {batch}x{model} mesh uses {size} of the {count} devices; "
            f"the others stay idle. Meshes using all: {_shapes_for(count)}."
        )
    return devices[:size]


def check_batch_size(distribution, batch_size):
    """Raise a `ValueError` unless the batch axis of the mesh divides `batch_size`."""
    if distribution is None or batch_size is None:
        return
    size = _batch_axis_size(distribution)
    if batch_size % size:
        raise ValueError(
            f"The batch size {batch_size} is not divisible by the {size} "
            f"devices of the mesh's batch axis: each must get the same "
            f"number of examples. Use a batch size that is a multiple of "
            f"{size} (e.g. {size * max(1, round(batch_size / size))}), or a "
            "mesh with fewer devices on the batch axis."
        )


def _batch_axis_size(distribution):
    mesh = distribution.device_mesh
    return mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)]


def _dimensions(backbone):
    """`{size: [config names]}` of a backbone's integer sizes, if known."""
    import keras_hub

    config = None
    if isinstance(backbone, keras_hub.models.CausalLM):
        backbone = backbone.backbone
    if isinstance(backbone, keras_hub.models.Backbone):
        config = backbone.get_config()
    elif isinstance(backbone, str) and not hasattr(keras_hub.models, backbone):
        try:
            from keras_hub.src.utils.preset_utils import load_json

            config = load_json(backbone).get("config")
        except Exception:  # Not a Keras preset (e.g. a Hugging Face folder).
            config = None
    sizes = collections.defaultdict(list)
    for name, value in (config or {}).items():
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            if re.search(r"dim|heads|size|experts", name):
                sizes[value].append(name)
    return dict(sizes)


def _checked_layout(layout, variable, dimensions):
    """`layout` with size-1 split axes replicated; a `ValueError` if a mesh
    axis does not divide the dimension it splits."""
    mesh = layout.device_mesh
    axes = list(layout.axes)
    shape = tuple(variable.shape)
    if len(axes) != len(shape):
        raise ValueError(
            f"The layout {tuple(axes)} of {variable.path!r} has {len(axes)} "
            f"axes, the variable {len(shape)} (shape {shape}): the layout map "
            "does not fit this architecture."
        )
    for i, (name, size) in enumerate(zip(axes, shape)):
        if name is None:
            continue
        split = mesh.shape[list(mesh.axis_names).index(name)]
        if size == 1:
            axes[i] = None  # e.g. one key/value head (multi-query attention).
        elif size % split:
            known = dimensions.get(size)
            what = f" ({' = '.join(known)})" if known else ""
            divisors = [d for d in range(1, size + 1) if size % d == 0 and d <= 64]
            raise ValueError(
                f"The {'x'.join(map(str, mesh.shape))} mesh cannot split "
                f"{variable.path!r} (shape {shape}): its axis {i}, of size "
                f"{size}{what}, goes over the {split} devices of the {name!r} "
                f"mesh axis, which does not divide {size}. Use a mesh whose "
                f"{name!r} size divides {size} (one of "
                f"{', '.join(map(str, divisors))}), or a model with sizes "
                f"divisible by {split}; or `--data-parallel`."
            )
    if axes == list(layout.axes):
        return layout
    return keras.distribution.TensorLayout(axes, mesh)


class _SplitBatchesThatDivide:
    """Split data over the batch axis when it divides the batch; replicate
    otherwise (e.g. the last, smaller batch of prompts in `generate`). With
    several processes each holds its own part of the data: no fallback."""

    def get_data_layout(self, data_shape):
        size = _batch_axis_size(self)
        indivisible = not data_shape or data_shape[0] is None or data_shape[0] % size
        if indivisible and self.num_processes == 1:
            return keras.distribution.TensorLayout(
                [None] * len(data_shape), self.device_mesh
            )
        return super().get_data_layout(data_shape)


class _DataParallel(_SplitBatchesThatDivide, keras.distribution.DataParallel):
    pass


class _ModelParallel(_SplitBatchesThatDivide, keras.distribution.ModelParallel):
    def __init__(self, *, dimensions=None, **kwargs):
        super().__init__(**kwargs)
        self._dimensions = dimensions or {}

    def get_variable_layout(self, variable):
        layout = super().get_variable_layout(variable)
        return _checked_layout(layout, variable, self._dimensions)


# --- distributions -----------------------------------------------------------


def data_parallel(devices=None):
    """A `keras.distribution.DataParallel` over `devices` (default: all).

    Example:
    ```python
    keras.distribution.set_distribution(data_parallel())
    model = keras_textdiff.DiffusionDecoder.from_preset("./my_preset")
    ```
    """
    check_backend()
    devices = list(devices or keras.distribution.list_devices())
    return _DataParallel(devices=devices)


def model_parallel(backbone, mesh, devices=None):
    """A `keras.distribution.ModelParallel` for `backbone` on a `mesh`.

    Args:
        backbone: what the model will be built on: a keras-hub backbone or
            `CausalLM` (class or instance), a class name, or a preset
            directory or handle (its `config.json` names the class).
        mesh: `"BATCHxMODEL"` or `(batch, model)`: devices along the data
            and the model axis. Their product must divide the device count.
        devices: the devices (default: `keras.distribution.list_devices()`).

    A weight whose size a mesh axis does not divide raises a `ValueError`
    naming the weight, the size and the mesh sizes that would work, when the
    model is created; a split axis of size 1 (a single key/value head) is
    replicated instead.

    Example:
    ```python
    distribution = model_parallel(keras_hub.models.LlamaBackbone, "2x4")
    with distribution.scope():
        model = keras_hub.models.CausalLM.from_preset("./llama")
    ```
    """
    check_backend()
    batch, model = parse_mesh(mesh)
    devices = _mesh_devices(batch, model, devices or keras.distribution.list_devices())
    device_mesh = keras.distribution.DeviceMesh((batch, model), (BATCH, MODEL), devices)
    return _ModelParallel(
        layout_map=layout_map(backbone, device_mesh),
        batch_dim_name=BATCH,
        dimensions=_dimensions(backbone),
    )


def get_distribution(spec, backbone=None, batch_size=None):
    """A `keras.distribution.Distribution` from a spec, or `None`.

    Args:
        spec: `None` (one device), `"data"` (data parallel), `"BATCHxMODEL"`
            (model parallel), or a `keras.distribution.DataParallel` or
            `ModelParallel`.
        backbone: for model parallel, see `model_parallel()`.
        batch_size: if given, checked against the batch axis of the mesh.
    """
    if spec is None:
        return None
    if isinstance(spec, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        check_backend()
        distribution = spec
    elif isinstance(spec, str) and spec.strip().lower() in ("data", "data-parallel"):
        distribution = data_parallel()
    else:
        check_backend()
        parse_mesh(spec)  # A bad spec fails before anything is read.
        if backbone is None:
            raise ValueError("Model parallel needs the backbone (class, instance or preset).")
        distribution = model_parallel(backbone, spec)
    check_batch_size(distribution, batch_size)
    return distribution


@contextlib.contextmanager
def distributed(spec, backbone=None, batch_size=None):
    """Within this context, Keras uses the distribution `spec` (see
    `get_distribution`); yields it (`None` for one device).

    Create the model inside the context, so its variables get their layouts.
    """
    distribution = get_distribution(spec, backbone, batch_size)
    if distribution is None:
        yield None
        return
    with distribution.scope():
        yield distribution


def describe(distribution):
    """A JSON-serializable description of a distribution (for run configs)."""
    if distribution is None:
        return None
    if isinstance(distribution, str):
        return distribution
    mesh = distribution.device_mesh
    return {
        "type": type(distribution).__name__.lstrip("_"),
        "mesh": dict(zip(mesh.axis_names, (int(s) for s in mesh.shape))),
        "devices": int(math.prod(mesh.shape)),
    }


def distributed_recipe(preset=None, backbone=None):
    """Run the decorated function under its `distribution=None` argument (a
    spec, see `get_distribution`).

    Args:
        preset: the name of the function's argument holding the model's
            preset (for model parallel, its config names the backbone).
        backbone: or the backbone class (name) the function builds.

    The function receives the `keras.distribution.Distribution` (or `None`)
    as `distribution`, and is called inside its scope, so the model it
    creates gets its layouts. Its `batch_size` argument, if any, is checked
    first against the mesh.

    Example:
    ```python
    @distributed_recipe(preset="preset")
    def train_it(preset, batch_size=8, distribution=None):
        model = keras_textdiff.DiffusionDecoder.from_preset(preset)
        ...
    ```
    """

    def decorator(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            spec = bound.arguments["distribution"]
            if spec is None:
                return function(*args, **kwargs)
            source = bound.arguments[preset] if preset else backbone
            distribution = get_distribution(
                spec, source, bound.arguments.get("batch_size")
            )
            bound.arguments["distribution"] = distribution
            with distribution.scope():
                return function(*bound.args, **bound.kwargs)

        return wrapper

    return decorator


def backbone_class(backbone):
    """The keras-hub backbone class of a backbone, `CausalLM`, name or preset."""
    import keras_hub

    if isinstance(backbone, str):
        found = getattr(keras_hub.models, backbone, None)
        if found is None:
            from keras_hub.src.utils.preset_utils import get_preset_loader

            try:
                found = get_preset_loader(backbone).check_backbone_class()
            except Exception as error:
                raise ValueError(
                    f"{backbone!r} is neither a keras-hub class name nor a "
                    f"preset whose config.json names its backbone ({error})."
                ) from error
        backbone = found
    if isinstance(backbone, keras_hub.models.CausalLM):
        backbone = backbone.backbone
    elif isinstance(backbone, type) and issubclass(backbone, keras_hub.models.CausalLM):
        backbone = backbone.backbone_cls
    if isinstance(backbone, keras_hub.models.Backbone):
        return type(backbone)
    if isinstance(backbone, type) and issubclass(backbone, keras_hub.models.Backbone):
        return backbone
    raise ValueError(
        "Pass the backbone as a keras-hub backbone or CausalLM (class or "
        f"instance), a class name, or a preset. Received: {backbone!r}"
    )
