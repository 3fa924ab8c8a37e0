"""`textdiff convert`, `textdiff adapt` and `textdiff import-gguf`, in-process."""

import json
import os
import subprocess
import sys

import keras
import keras_hub
import numpy as np
from keras import ops

import keras_textdiff as ktd
from keras_textdiff.cli import main
from keras_textdiff.recipes import load_model
from tiny_models import tiny_causal_lm


def ar_preset(tmp_path, name="gpt2"):
    path = str(tmp_path / f"ar_{name}")
    tiny_causal_lm(name, sequence_length=12).save_to_preset(path)
    return path


def weights(model):
    return [ops.convert_to_numpy(w) for w in model.backbone.weights]


def test_convert_writes_a_diffusion_preset(tmp_path, capsys):
    preset = ar_preset(tmp_path)
    out = str(tmp_path / "diffusion")
    assert main(["convert", "--preset", preset, "--out", out, "--attention", "prefix"]) == 0
    assert "Saved a DiffusionDecoder (GPT2Backbone, prefix attention" in capsys.readouterr().out
    model = ktd.DiffusionDecoder.from_preset(out)
    ar = keras_hub.models.CausalLM.from_preset(preset)
    assert model.attention == "prefix"
    for a, b in zip(weights(model), weights(ar)):
        np.testing.assert_array_equal(a, b)
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_convert_takes_the_ar_separator(tmp_path):
    preset = ar_preset(tmp_path)
    out = str(tmp_path / "diffusion")
    # As typed in a shell, escapes included ("\\x61" is "a"; "\\n" works the
    # same way, but the tiny tokenizer has no newline).
    assert main(["convert", "--preset", preset, "--out", out, "--separator", "b\\x61"]) == 0
    pre = ktd.DiffusionDecoder.from_preset(out).preprocessor
    assert pre.separator == "ba"
    separator = np.asarray(pre.tokenizer("ba")).tolist()
    packed = {k: ops.convert_to_numpy(v)[0] for k, v in pre.generate_preprocess(["ab"]).items()}
    first = int(np.argmax(packed["target_mask"]))  # The prompt closes with "ba".
    assert separator and packed["token_ids"][first - len(separator):first].tolist() == separator


def test_convert_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    preset = ar_preset(tmp_path)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("another run")
    assert main(["convert", "--preset", preset, "--out", str(occupied)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert os.listdir(occupied) == ["keep.txt"]

    bert = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=8, max_sequence_length=8,
    )
    bert.save_to_preset(str(tmp_path / "bert"))
    out = tmp_path / "from_bert"
    assert main(["convert", "--preset", str(tmp_path / "bert"), "--out", str(out)]) == 2
    assert "BertBackbone" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["ar_gpt2", "bert", "occupied"]


def test_adapt_trains_n_steps_then_saves(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    preset = ar_preset(tmp_path, "llama3")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("the cat sat on the mat. " * 20)
    (corpus / "b.py").write_text("def add(a, b):\n    return a + b\n" * 10)
    out = tmp_path / "adapted"
    argv = ["adapt", "--preset", preset, "--steps", "3", "--out", str(out),
            "--corpus", str(corpus), "--batch-size", "2", "--shifted-prediction"]
    assert main(argv) == 0
    assert "AR2Diff_3: adapted 3 steps on 2 texts" in capsys.readouterr().out
    adapted = ktd.DiffusionDecoder.from_preset(str(out / "preset"))
    assert adapted.shifted_prediction
    config = json.loads((out / "run_config.json").read_text())
    assert config["converter"]["shifted_prediction"] is True
    ar = keras_hub.models.CausalLM.from_preset(preset)
    changed = [not np.array_equal(a, b) for a, b in zip(weights(adapted), weights(ar))]
    assert sum(changed) >= len(changed) // 2
    # Adapting a diffusion preset again continues from it.
    again = tmp_path / "again"
    assert main(["adapt", "--preset", str(out / "preset"), "--steps", "2", "--out",
                 str(again), "--corpus", str(corpus / "a.txt"), "--batch-size", "2"]) == 0
    assert ktd.DiffusionDecoder.from_preset(str(again / "preset")).shifted_prediction
    # A missing corpus is refused before any work.
    assert main(["adapt", "--preset", preset, "--steps", "1", "--out",
                 str(tmp_path / "x"), "--corpus", str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_pretrain_diffusion_and_ar(tmp_path, capsys):
    corpus = tmp_path / "corpus.py"
    corpus.write_text("def add(a, b):\n    return a + b\n\n" * 30)
    for objective in ("diffusion", "ar"):
        out = tmp_path / objective
        assert main(["pretrain", "--out", str(out), "--steps", "2", "--objective", objective,
                     "--corpus", str(corpus), "--sequence-length", "32",
                     "--vocabulary-size", "300", "--batch-size", "2"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["steps"] == 2 and np.isfinite(metrics["loss"])
        model = load_model(str(out / "preset"))
        assert isinstance(model, ktd.DiffusionDecoder) == (objective == "diffusion")
        assert isinstance(model, keras_hub.models.CausalLM)
        if objective == "ar":
            # Generation goes past the prompt (padding is not the end token).
            model.compile(sampler="greedy")
            prompt = "def add(a, b):\n"
            assert len(model.generate(prompt, max_length=24)) > len(prompt)
    # The presets reload in a fresh process (their tokenizer class registers
    # itself on `import keras_textdiff`).
    code = (
        "import sys; from keras_textdiff.recipes import load_model; "
        "print(type(load_model(sys.argv[1])).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ar" / "preset")],
        env=dict(os.environ, KERAS_BACKEND="jax"), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("GPT2CausalLM")


def test_import_gguf_refuses_a_non_gguf_file(tmp_path, capsys):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all")
    out = tmp_path / "imported"
    assert main(["import-gguf", str(fake), "--out", str(out)]) == 2
    assert "model.gguf" in capsys.readouterr().err
    assert not out.exists()


def test_bad_lora_rank_and_dtype_fail_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    flags = {
        "--lora-rank": ["0", "-3", "x"],
        "--dtype": ["float8"],
    }
    for command in ("adapt", "finetune", "pretrain"):
        base = [command, "--preset", "p", "--out", str(out), "--steps", "1",
                "--task", "squad"]
        if command == "pretrain":
            base = [command, "--out", str(out), "--steps", "1"]
        elif command == "adapt":
            base = base[:-2]
        for flag, values in flags.items():
            if command == "pretrain" and flag == "--lora-rank":
                continue
            for value in values:
                assert main(base + [flag, value]) == 2, f"{command} {flag} {value} was accepted"
                error = capsys.readouterr().err.strip().splitlines()[-1]
                assert flag in error and repr(value) in error, error
                assert ("int >= 1" if flag == "--lora-rank" else "mixed_bfloat16") in error
    assert not out.exists()
    assert keras.config.dtype_policy().name == "float32"
