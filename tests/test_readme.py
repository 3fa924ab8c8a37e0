"""The README's Python snippets run as written, on tiny stand-ins.

Each ```python block is extracted and run in a folder holding tiny presets
under the names the README uses (`./my_llama_preset`, `./my_gpt2_preset`,
`./my_preset`). Only step counts are lowered, by the substitutions below;
everything else is the README's text. The model-parallel block needs 8
devices, so it runs in a subprocess that asks XLA for 8 host devices.
"""

import os
import re
import subprocess
import sys

import keras_hub
import pytest

import keras_textdiff as ktd
from tiny_models import tiny_causal_lm

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
# Budgets only: the README's numbers of steps and epochs, made tiny.
FASTER = {"steps=1000": "steps=2", "epochs=3": "epochs=1", "num_layers=4": "num_layers=2",
          "hidden_dim=256": "hidden_dim=16", "intermediate_dim=1024": "intermediate_dim=32"}


def readme_blocks():
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "README has lost its Python examples"
    return blocks


def faster(block):
    for slow, fast in FASTER.items():
        block = block.replace(slow, fast)
    return block


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    ar = tiny_causal_lm("llama", sequence_length=32)
    ar.save_to_preset(str(folder / "my_llama_preset"))
    gpt2 = tiny_causal_lm("gpt2", sequence_length=32)
    gpt2.save_to_preset(str(folder / "my_gpt2_preset"))  # Its tokenizer is what the README reads.
    # The model-parallel block splits weights 4 ways: sizes divisible by 4
    # (a vocabulary larger than the tokenizer's is fine).
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=64, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=32, intermediate_dim=64,
    )
    wide = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=ar.preprocessor)
    ktd.AR2DiffConverter().convert(wide).save_to_preset(str(folder / "my_preset"))
    return folder


@pytest.mark.parametrize("index", [0, 2])
def test_readme_block_runs(stand_ins, monkeypatch, index):
    block = readme_blocks()[index]
    assert "./my_" in block  # The stand-ins are the ones it reads.
    monkeypatch.chdir(stand_ins)
    exec(compile(faster(block), f"README block {index + 1}", "exec"), {"__name__": "readme"})


def test_readme_model_parallel_block_runs(stand_ins):
    block = next(b for b in readme_blocks() if "distributed(" in b)
    env = dict(os.environ, KERAS_BACKEND="jax",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8")
    result = subprocess.run([sys.executable, "-c", faster(block)], cwd=stand_ins, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
