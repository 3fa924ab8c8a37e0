"""Bad inputs to the Python API: each raises `ValueError` (or
`FileNotFoundError`) with a message that names the argument or file, before
any work, and leaves the files on disk as they were.

Each case is a call (a function of the workspace paths and an output path
under the case's own directory), the exception type, and substrings of its
message.
"""

import os

import pytest

import keras_textdiff as ktd
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from keras_textdiff import presets
from keras_textdiff import recipes
from keras_textdiff.evaluation import evaluate
from keras_textdiff.evaluation.evaluate import generate_predictions
from reliability_setup import snapshot
from reliability_setup import workspace  # noqa: F401 (a fixture)


class Stub:
    """A model that answers every prompt with "x"."""

    def generate(self, prompts, max_length=None):
        return ["x" for _ in prompts]


EXAMPLES = [{"prefix": "cat", "target": "chat"}]


def finetune(w, out, **kwargs):
    arguments = dict(preset=w["diffusion"], task="translation", data=w["translation"],
                     out_dir=out, steps=2, batch_size=2)
    return recipes.finetune(**{**arguments, **kwargs})


def score(w, out_dir, **kwargs):
    arguments = dict(preset=w["diffusion"], task="translation", data=w["translation"], limit=1)
    return recipes.evaluate_preset(**{**arguments, **kwargs})


def pretrain(w, out, **kwargs):
    arguments = dict(out_dir=out, steps=1, corpus=w["corpus_txt"], vocabulary_size=300,
                     sequence_length=16)
    return recipes.pretrain(**{**arguments, **kwargs})


def adapt(w, out, **kwargs):
    arguments = dict(preset=w["ar"], out_dir=out, steps=1, corpus=w["corpus_txt"])
    return recipes.adapt_run(**{**arguments, **kwargs})


def scored(examples, task="translation", **kwargs):
    return lambda w, out: evaluate(Stub(), examples, task, verbose=0, **kwargs)


# (id, call, exception, substrings of the message)
CASES = [
    ("finetune-steps-0", lambda w, o: finetune(w, o, steps=0), ValueError, ["`steps`", "steps=0"]),
    ("finetune-steps-bool", lambda w, o: finetune(w, o, steps=True), ValueError, ["`steps`"]),
    ("finetune-steps-float", lambda w, o: finetune(w, o, steps=2.0), ValueError, ["`steps`"]),
    ("finetune-lr-nan", lambda w, o: finetune(w, o, learning_rate=float("nan")), ValueError,
     ["`learning_rate`", "nan"]),
    ("finetune-lr-negative", lambda w, o: finetune(w, o, learning_rate=-1.0), ValueError,
     ["`learning_rate`"]),
    ("finetune-lr-string", lambda w, o: finetune(w, o, learning_rate="1e-3"), ValueError,
     ["`learning_rate`", "'1e-3'"]),
    ("finetune-batch-0", lambda w, o: finetune(w, o, batch_size=0), ValueError, ["`batch_size`"]),
    ("finetune-checkpoint-every-0", lambda w, o: finetune(w, o, checkpoint_every=0), ValueError,
     ["`checkpoint_every`"]),
    ("finetune-seed-negative", lambda w, o: finetune(w, o, seed=-1), ValueError, ["`seed`"]),
    ("finetune-sequence-length-0", lambda w, o: finetune(w, o, sequence_length=0), ValueError,
     ["`sequence_length`"]),
    ("finetune-lora-rank-0", lambda w, o: finetune(w, o, lora_rank=0), ValueError, ["`lora_rank`"]),
    ("finetune-preset-missing", lambda w, o: finetune(w, o, preset=w["root"] + "/nothing"),
     FileNotFoundError, ["No preset directory", "nothing"]),
    ("finetune-preset-truncated", lambda w, o: finetune(w, o, preset=w["truncated_weights"]),
     ValueError, ["model.weights.h5", "cannot be read"]),
    ("finetune-out-occupied", lambda w, o: finetune(w, w["occupied"]), ValueError,
     ["occupied", "not a keras_textdiff run"]),
    ("evaluate-preset-limit-0", lambda w, o: score(w, o, limit=0), ValueError, ["`limit`", "limit=0"]),
    ("evaluate-preset-limit-negative", lambda w, o: score(w, o, limit=-1), ValueError, ["`limit`"]),
    ("evaluate-preset-limit-float", lambda w, o: score(w, o, limit=1.5), ValueError, ["`limit`"]),
    ("evaluate-preset-out-exists", lambda w, o: score(w, o, out=w["corpus_txt"]),
     ValueError, ["already exists", "overwrite=True"]),
    ("evaluate-preset-out-missing-dir", lambda w, o: score(w, o, out=o + "/missing/x.json"),
     ValueError, ["missing", "does not exist"]),
    ("evaluate-preset-out-is-dir", lambda w, o: score(w, o, out=w["occupied"]), ValueError,
     ["occupied", "is a directory"]),
    ("evaluate-preset-batch-0", lambda w, o: score(w, o, batch_size=0), ValueError, ["`batch_size`"]),
    ("evaluate-preset-num-samples-0", lambda w, o: score(w, o, num_samples=0), ValueError,
     ["`num_samples`"]),
    ("evaluate-preset-max-length-0", lambda w, o: score(w, o, max_length=0), ValueError,
     ["`max_length`"]),
    ("evaluate-preset-unknown-option", lambda w, o: score(w, o, beams=4), TypeError, ["beams"]),
    ("evaluate-preset-bad-decoding", lambda w, o: score(w, o, decoding={"strategy": "greedy"}),
     ValueError, ["strategy"]),
    ("pretrain-steps-0", lambda w, o: pretrain(w, o, steps=0), ValueError, ["`steps`"]),
    ("pretrain-lr-inf", lambda w, o: pretrain(w, o, learning_rate=float("inf")), ValueError,
     ["`learning_rate`"]),
    ("pretrain-vocabulary-small", lambda w, o: pretrain(w, o, vocabulary_size=10), ValueError,
     ["`vocabulary_size`", ">= 259"]),
    ("pretrain-objective", lambda w, o: pretrain(w, o, objective="mlm"), ValueError, ["`objective`"]),
    ("pretrain-size", lambda w, o: pretrain(w, o, size="huge"), ValueError, ["`size`"]),
    ("pretrain-table-shorter", lambda w, o: pretrain(w, o, max_sequence_length=8), ValueError,
     ["`max_sequence_length`"]),
    ("pretrain-corpus-missing", lambda w, o: pretrain(w, o, corpus=w["root"] + "/none.txt"),
     ValueError, ["none.txt", "no such file"]),
    ("adapt-steps-0", lambda w, o: adapt(w, o, steps=0), ValueError, ["`steps`"]),
    ("adapt-batch-0", lambda w, o: adapt(w, o, batch_size=0), ValueError, ["`batch_size`"]),
    ("adapt-preset-bad-config", lambda w, o: adapt(w, o, preset=w["bad_config"]), ValueError,
     ["config.json", "not valid JSON"]),
    ("evaluate-prefix-none", scored([{"prefix": None, "target": ""}]), ValueError,
     ["examples[0]['prefix']", "NoneType"]),
    ("evaluate-prefix-list", scored([{"prefix": [1, 2], "target": ""}]), ValueError,
     ["examples[0]['prefix']", "[1, 2]"]),
    ("evaluate-prefix-bytes", scored([{"prefix": b"cat", "target": ""}]), ValueError,
     ["examples[0]['prefix']", "bytes"]),
    ("evaluate-examples-dict", scored({"prefix": "cat", "target": ""}), ValueError, ["`examples`"]),
    ("evaluate-examples-empty", scored([]), ValueError, ["`examples`"]),
    ("evaluate-unknown-task", scored(EXAMPLES, task="wmt"), ValueError, ["'wmt'", "Known tasks"]),
    ("evaluate-missing-key", scored([{"prefix": "q"}], task="squad"), ValueError, ["answers"]),
    ("evaluate-timeout-0", scored(EXAMPLES, timeout=0), ValueError, ["`timeout`"]),
    ("evaluate-timeout-negative", scored(EXAMPLES, timeout=-1.0), ValueError, ["`timeout`"]),
    ("evaluate-max-workers-0", scored(EXAMPLES, max_workers=0), ValueError, ["`max_workers`"]),
    ("evaluate-k-past-samples", scored([{**EXAMPLES[0], "tests": []}], task="mbpp", k=2), ValueError,
     ["`k`", "num_samples=1"]),
    ("evaluate-max-length-negative", scored(EXAMPLES, max_length=-1), ValueError, ["`max_length`"]),
    ("predictions-prompts-string", lambda w, o: generate_predictions(Stub(), "cat", verbose=0),
     ValueError, ["`prompts`", "list of strings"]),
    ("predictions-prompt-none", lambda w, o: generate_predictions(Stub(), [None], verbose=0),
     ValueError, ["`prompts[0]`"]),
    ("predictions-prompt-int", lambda w, o: generate_predictions(Stub(), ["a", 3], verbose=0),
     ValueError, ["`prompts[1]`", "int"]),
    ("predictions-not-a-model", lambda w, o: generate_predictions(object(), ["a"], verbose=0),
     ValueError, ["`model`"]),
    ("load-model-missing", lambda w, o: recipes.load_model(w["root"] + "/nothing"),
     FileNotFoundError, ["nothing"]),
    ("load-model-truncated", lambda w, o: recipes.load_model(w["truncated_weights"]), ValueError,
     ["truncated_weights/model.weights.h5"]),
    ("load-model-garbage", lambda w, o: recipes.load_model(w["garbage_weights"]), ValueError,
     ["garbage_weights/model.weights.h5"]),
    ("load-model-bad-task", lambda w, o: recipes.load_model(w["bad_task"]), ValueError,
     ["bad_task/task.json"]),
    ("check-preset-is-file", lambda w, o: presets.check_preset(w["file_txt"]), ValueError,
     ["file.txt", "is a file"]),
    ("check-output-file-dir", lambda w, o: presets.check_output_file(w["occupied"]), ValueError,
     ["is a directory"]),
    ("check-output-dir-occupied", lambda w, o: presets.check_output_dir(w["occupied"]), ValueError,
     ["not empty"]),
    ("run-directory-is-file", lambda w, o: recipes.RunDirectory(w["file_txt"], {}), ValueError,
     ["file.txt", "is a file"]),
    ("run-directory-damaged", lambda w, o: recipes.RunDirectory(w["damaged_run"], {}), ValueError,
     ["run_config.json", "not valid JSON"]),
    ("run-directory-unwritable", lambda w, o: recipes.RunDirectory("/proc/textdiff_run", {}),
     ValueError, ["cannot be written"]),
    # Silent wrong results before: a length the position table cannot hold
    # saved as the table's, ids past the backbone's vocabulary clamped, an AR
    # preset loaded as a diffusion model without its tokenizer.
    ("convert-sequence-length-past-table",
     lambda w, o: ktd.AR2DiffConverter(sequence_length=1000).convert(w["ar"]), ValueError,
     ["`sequence_length` = 1000", "`max_sequence_length` = 16", "<= 16"]),
    ("convert-sequence-length-0", lambda w, o: ktd.AR2DiffConverter(sequence_length=0).convert(w["ar"]),
     ValueError, ["`sequence_length`", "0"]),
    ("convert-vocabulary-larger", lambda w, o: ktd.AR2DiffConverter().convert(w["ar_large_vocabulary"]),
     ValueError, ["tokenizer", "29 tokens", "`vocabulary_size` = 10"]),
    ("decoder-vocabulary-larger",
     lambda w, o: ktd.DiffusionDecoder(gpt2_backbone(10), ktd.DiffusionPreprocessor(letter_tokenizer(), 16)),
     ValueError, ["29 tokens", "`vocabulary_size` = 10"]),
    ("decoder-preset-vocabulary-larger",
     lambda w, o: ktd.DiffusionDecoder.from_preset(w["diffusion_large_vocabulary"]), ValueError,
     ["32 tokens", "`vocabulary_size` = 29"]),
    ("load-model-vocabulary-larger", lambda w, o: recipes.load_model(w["diffusion_large_vocabulary"]),
     ValueError, ["32 tokens", "`vocabulary_size` = 29"]),
    ("decoder-preset-is-ar", lambda w, o: ktd.DiffusionDecoder.from_preset(w["ar"]), ValueError,
     ["autoregressive", "GPT2CausalLM", "AR2DiffConverter", "textdiff convert"]),
    ("preprocessor-no-tokenizer", lambda w, o: ktd.DiffusionPreprocessor(None, 16), ValueError,
     ["`tokenizer`", "None"]),
    ("preprocessor-tokenizer-string", lambda w, o: ktd.DiffusionPreprocessor("gpt2_base_en", 16),
     ValueError, ["`tokenizer`", "'gpt2_base_en'"]),
]


@pytest.mark.parametrize("call, error, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error_and_writes_nothing(call, error, expected, workspace, tmp_path):
    out = str(tmp_path / "out")
    before = snapshot(workspace["root"], tmp_path)
    with pytest.raises(error) as raised:
        call(workspace, out)
    assert type(raised.value) is error  # Not a subclass: e.g. no bare OSError.
    for text in expected:
        assert text in str(raised.value), f"{text!r} not in {str(raised.value)!r}"
    assert snapshot(workspace["root"], tmp_path) == before
    assert not os.path.exists(out)
