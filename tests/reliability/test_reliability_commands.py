"""Bad inputs to the `textdiff` commands: each ends in one line that names
the argument or file and says what to do, exit code 2, and nothing written.

Each case is `argv` (with `{name}` standing for a path of the workspace, see
`reliability_setup`, and `{out}` for a path under the case's own directory)
and the substrings its error line must hold. The commands run in-process
through `keras_textdiff.cli.main`; `test_reliability_console.py` runs them as
a user does.
"""

import os

import pytest

from keras_textdiff.cli import main
from reliability_setup import snapshot
from reliability_setup import workspace  # noqa: F401 (a fixture)

TUNE = ["finetune", "--preset", "{diffusion}", "--task", "translation",
        "--data", "{translation}", "--steps", "2", "--batch-size", "2"]
SCORE = ["evaluate", "--preset", "{diffusion}", "--task", "translation",
         "--data", "{translation}", "--limit", "1"]
GENERATE = ["generate", "--preset", "{diffusion}", "cat"]
CONVERT = ["convert", "--preset", "{ar}"]
ADAPT = ["adapt", "--preset", "{ar}", "--steps", "1", "--corpus", "{corpus_txt}"]
PRETRAIN = ["pretrain", "--steps", "1", "--corpus", "{corpus_txt}",
            "--vocabulary-size", "300", "--sequence-length", "16"]
QUICK = ["quickstart"]


def with_flags(base, *flags, out="{out}"):
    """`base` with `flags`; `--out` is `out` unless `flags` give one."""
    argv = list(base)
    if out is not None and "--out" not in flags and base[0] not in ("generate", "quickstart"):
        argv += ["--out", out]
    if base[0] == "quickstart" and "--output-dir" not in flags:
        argv += ["--output-dir", out]
    return argv + list(flags)


def replaced(base, flag, value):
    """`base` with `flag`'s value replaced by `value` (`None`: the flag left out)."""
    argv = list(base)
    i = argv.index(flag)
    del argv[i : i + 2]
    return argv if value is None else argv[:i] + [flag, value] + argv[i:]


# (id, argv, substrings of the error line)
ARGUMENTS = [
    # Numbers out of range, or not numbers: argparse, before anything loads.
    ("finetune-steps-0", with_flags(replaced(TUNE, "--steps", "0")), ["--steps", "int >= 1", "'0'"]),
    ("finetune-steps-negative", with_flags(replaced(TUNE, "--steps", "-5")), ["--steps", "'-5'"]),
    ("finetune-steps-text", with_flags(replaced(TUNE, "--steps", "abc")), ["--steps", "'abc'"]),
    ("finetune-steps-float", with_flags(replaced(TUNE, "--steps", "1.5")), ["--steps", "'1.5'"]),
    ("finetune-lr-nan", with_flags(TUNE, "--learning-rate", "nan"), ["--learning-rate", "finite", "'nan'"]),
    ("finetune-lr-inf", with_flags(TUNE, "--learning-rate", "inf"), ["--learning-rate", "'inf'"]),
    ("finetune-lr-0", with_flags(TUNE, "--learning-rate", "0"), ["--learning-rate", "> 0"]),
    ("finetune-lr-negative", with_flags(TUNE, "--learning-rate", "-0.001"), ["--learning-rate", "'-0.001'"]),
    ("finetune-lr-text", with_flags(TUNE, "--learning-rate", "fast"), ["--learning-rate", "'fast'"]),
    ("finetune-batch-0", with_flags(replaced(TUNE, "--batch-size", "0")), ["--batch-size", "int >= 1"]),
    ("finetune-checkpoint-every-0", with_flags(TUNE, "--checkpoint-every", "0"), ["--checkpoint-every"]),
    ("finetune-seed-negative", with_flags(TUNE, "--seed", "-1"), ["--seed", "'-1'"]),
    ("finetune-seed-too-big", with_flags(TUNE, "--seed", str(2**32)), ["--seed", "2**32"]),
    ("finetune-sequence-length-0", with_flags(TUNE, "--sequence-length", "0"), ["--sequence-length"]),
    ("finetune-lora-rank-0", with_flags(TUNE, "--lora-rank", "0"), ["--lora-rank", "int >= 1"]),
    ("finetune-dtype", with_flags(TUNE, "--dtype", "float8"), ["--dtype", "'float8'", "mixed_bfloat16"]),
    ("finetune-no-preset", with_flags(replaced(TUNE, "--preset", None)), ["required", "--preset"]),
    ("finetune-no-task", with_flags(replaced(TUNE, "--task", None)), ["required", "--task"]),
    ("finetune-no-out", replaced(TUNE, "--steps", "2"), ["required", "--out"]),
    ("finetune-two-meshes", with_flags(TUNE, "--data-parallel", "--model-parallel", "1x1"),
     ["--model-parallel", "not allowed with", "--data-parallel"]),
    ("finetune-unknown-flag", with_flags(TUNE, "--epochs", "3"), ["unrecognized arguments", "--epochs"]),
    ("evaluate-limit-0", replaced(SCORE, "--limit", "0"), ["--limit", "'0'"]),
    ("evaluate-limit-negative", replaced(SCORE, "--limit", "-1"), ["--limit", "'-1'"]),
    ("evaluate-num-samples-0", SCORE + ["--num-samples", "0"], ["--num-samples"]),
    ("evaluate-batch-0", SCORE + ["--batch-size", "0"], ["--batch-size"]),
    ("evaluate-max-length-0", SCORE + ["--max-length", "0"], ["--max-length"]),
    ("evaluate-num-steps-0", SCORE + ["--num-steps", "0"], ["--num-steps"]),
    ("evaluate-temperature-negative", SCORE + ["--temperature", "-1"], ["--temperature", ">= 0"]),
    ("evaluate-temperature-nan", SCORE + ["--temperature", "nan"], ["--temperature", "'nan'"]),
    ("evaluate-threshold-nan", SCORE + ["--threshold", "nan"], ["--threshold", "'nan'"]),
    ("evaluate-entropy-bound-inf", SCORE + ["--entropy-bound", "inf"], ["--entropy-bound"]),
    ("generate-no-prompt", GENERATE[:-1], ["required", "prompts"]),
    ("generate-max-length-negative", GENERATE + ["--max-length", "-3"], ["--max-length", "'-3'"]),
    ("generate-num-steps-0", GENERATE + ["--num-steps", "0"], ["--num-steps"]),
    ("adapt-steps-0", with_flags(replaced(ADAPT, "--steps", "0")), ["--steps"]),
    ("adapt-lr-nan", with_flags(ADAPT, "--learning-rate", "nan"), ["--learning-rate"]),
    ("adapt-block-size-0", with_flags(ADAPT, "--block-size", "0"), ["--block-size"]),
    ("adapt-annealing-0", with_flags(ADAPT, "--annealing-steps", "0"), ["--annealing-steps"]),
    ("adapt-attention-causal", with_flags(ADAPT, "--attention", "causal"), ["--attention", "'causal'"]),
    ("pretrain-vocabulary-0", with_flags(replaced(PRETRAIN, "--vocabulary-size", "0")), ["--vocabulary-size"]),
    ("pretrain-sequence-length-0", with_flags(replaced(PRETRAIN, "--sequence-length", "0")),
     ["--sequence-length"]),
    ("pretrain-objective", with_flags(PRETRAIN, "--objective", "mlm"), ["--objective", "'mlm'"]),
    ("pretrain-size", with_flags(PRETRAIN, "--size", "huge"), ["--size", "'huge'"]),
    ("pretrain-max-sequence-length-0", with_flags(PRETRAIN, "--max-sequence-length", "0"),
     ["--max-sequence-length"]),
    ("convert-sequence-length-0", with_flags(CONVERT, "--sequence-length", "0"), ["--sequence-length"]),
    ("convert-target-length-0", with_flags(CONVERT, "--target-length", "0"), ["--target-length"]),
    ("quickstart-seconds-0", with_flags(QUICK, "--train-seconds", "0"), ["--train-seconds"]),
    ("quickstart-seconds-nan", with_flags(QUICK, "--train-seconds", "nan"), ["--train-seconds"]),
    ("quickstart-max-steps-0", with_flags(QUICK, "--max-steps", "0"), ["--max-steps"]),
    ("quickstart-batch-negative", with_flags(QUICK, "--batch-size", "-1"), ["--batch-size"]),
    ("quickstart-task-unknown", with_flags(QUICK, "--task", "nope"), ["--task", "invalid choice", "'nope'"]),
    ("quickstart-task-empty", with_flags(QUICK, "--task", ""), ["--task", "invalid choice"]),
    ("quickstart-code-batch-0", with_flags(QUICK, "--task", "code", "--batch-size", "0"), ["--batch-size"]),
    # Options of the code task only, given to the numbers task (the default).
    ("quickstart-numbers-sequence-length", with_flags(QUICK, "--sequence-length", "64"),
     ["`sequence_length` applies to task 'code' only", "--task code", "sequence_length=64"]),
    ("quickstart-numbers-vocabulary-size",
     with_flags(QUICK, "--task", "numbers", "--vocabulary-size", "300", "--sequence-length", "16"),
     ["`sequence_length` and `vocabulary_size` apply to task 'code' only", "--task code"]),
    ("no-command", [], ["required", "command"]),
    ("unknown-command", ["train", "--steps", "1"], ["invalid choice", "'train'"]),
]

# Input files: missing, of the wrong kind, or damaged.
INPUTS = [
    ("finetune-preset-missing", with_flags(replaced(TUNE, "--preset", "{root}/nothing")),
     ["No preset directory", "nothing"]),
    ("finetune-preset-is-file", with_flags(replaced(TUNE, "--preset", "{file_txt}")),
     ["file.txt", "is a file"]),
    ("finetune-preset-gguf-file", with_flags(replaced(TUNE, "--preset", "{fake_gguf}")),
     ["fake.gguf", "import-gguf"]),
    ("finetune-preset-empty-dir", with_flags(replaced(TUNE, "--preset", "{empty_dir}")),
     ["empty_dir", "no config.json"]),
    ("finetune-preset-no-config", with_flags(replaced(TUNE, "--preset", "{no_config}")),
     ["no_config", "no config.json"]),
    ("finetune-preset-truncated-weights", with_flags(replaced(TUNE, "--preset", "{truncated_weights}")),
     ["truncated_weights/model.weights.h5", "cannot be read", "save or copy it again"]),
    ("finetune-preset-empty-weights", with_flags(replaced(TUNE, "--preset", "{empty_weights}")),
     ["empty_weights/model.weights.h5", "cannot be read"]),
    ("finetune-preset-garbage-weights", with_flags(replaced(TUNE, "--preset", "{garbage_weights}")),
     ["garbage_weights/model.weights.h5", "cannot be read"]),
    ("finetune-preset-weights-dir", with_flags(replaced(TUNE, "--preset", "{weights_dir}")),
     ["weights_dir/model.weights.h5"]),
    ("finetune-preset-bad-config", with_flags(replaced(TUNE, "--preset", "{bad_config}")),
     ["bad_config/config.json", "not valid JSON"]),
    ("finetune-preset-empty-config", with_flags(replaced(TUNE, "--preset", "{empty_config}")),
     ["empty_config/config.json", "not valid JSON"]),
    ("finetune-preset-binary-config", with_flags(replaced(TUNE, "--preset", "{binary_config}")),
     ["binary_config/config.json", "not valid JSON"]),
    ("finetune-preset-bad-task", with_flags(replaced(TUNE, "--preset", "{bad_task}")),
     ["bad_task/task.json", "not valid JSON"]),
    ("finetune-preset-bad-tokenizer", with_flags(replaced(TUNE, "--preset", "{bad_tokenizer}")),
     ["bad_tokenizer/tokenizer.json", "not valid JSON"]),
    ("finetune-preset-bad-preprocessor", with_flags(replaced(TUNE, "--preset", "{bad_preprocessor}")),
     ["bad_preprocessor/preprocessor.json", "not valid JSON"]),
    ("finetune-data-missing", with_flags(replaced(TUNE, "--data", "{root}/no_data")),
     ["not found", "no_data"]),
    ("finetune-data-file-not-dir", with_flags(replaced(TUNE, "--data", "{file_txt}")),
     ["file.txt"]),
    ("finetune-squad-data-is-dir", with_flags(replaced(replaced(TUNE, "--task", "squad"), "--data",
                                                       "{translation}")),
     ["translation", "is a directory"]),
    ("finetune-squad-bad-json", with_flags(replaced(replaced(TUNE, "--task", "squad"), "--data",
                                                    "{squad_bad_json}")),
     ["squad_bad.json", "not valid JSON"]),
    ("finetune-unknown-task", with_flags(replaced(TUNE, "--task", "wmt")), ["'wmt'", "Known tasks"]),
    ("finetune-bad-split", with_flags(TUNE, "--split", "dev"), ["split", "'dev'"]),
    ("finetune-sequence-length-past-table", with_flags(TUNE, "--sequence-length", "40"),
     ["max_sequence_length` = 16", "40"]),
    ("evaluate-preset-missing", replaced(SCORE, "--preset", "{root}/nothing"), ["No preset directory"]),
    ("evaluate-preset-truncated", replaced(SCORE, "--preset", "{truncated_weights}"),
     ["model.weights.h5", "cannot be read"]),
    ("evaluate-preset-bad-task", replaced(SCORE, "--preset", "{bad_task}"), ["task.json"]),
    ("evaluate-data-missing", replaced(SCORE, "--data", "{root}/no_data"), ["not found", "no_data"]),
    ("evaluate-squad-bad-json", replaced(replaced(SCORE, "--task", "squad"), "--data", "{squad_bad_json}"),
     ["squad_bad.json", "not valid JSON"]),
    ("evaluate-split-all-translation", SCORE + ["--split", "all"], ["split", "'all'"]),
    ("evaluate-unknown-strategy", SCORE + ["--strategy", "greedy"], ["strategy", "'greedy'"]),
    ("evaluate-decoding-on-ar", replaced(SCORE, "--preset", "{ar}") + ["--strategy", "threshold"],
     ["autoregressive"]),
    ("generate-preset-missing", replaced(GENERATE, "--preset", "{root}/nothing"), ["No preset directory"]),
    ("generate-preset-truncated", replaced(GENERATE, "--preset", "{truncated_weights}"),
     ["model.weights.h5", "cannot be read"]),
    ("generate-preset-bad-config", replaced(GENERATE, "--preset", "{bad_config}"), ["config.json"]),
    ("generate-preset-is-file", replaced(GENERATE, "--preset", "{corpus_txt}"), ["corpus.txt", "is a file"]),
    ("generate-max-length-too-short", GENERATE + ["--max-length", "2"], ["max_length", "2"]),
    ("generate-max-length-past-table", GENERATE + ["--max-length", "1000"], ["max_length", "1000"]),
    ("convert-preset-missing", with_flags(replaced(CONVERT, "--preset", "{root}/nothing")),
     ["No preset directory"]),
    ("convert-preset-truncated", with_flags(replaced(CONVERT, "--preset", "{truncated_weights}")),
     ["model.weights.h5", "cannot be read"]),
    ("convert-preset-bad-config", with_flags(replaced(CONVERT, "--preset", "{bad_config}")),
     ["config.json", "not valid JSON"]),
    ("convert-block-without-size", with_flags(CONVERT, "--attention", "block"), ["block_size"]),
    ("adapt-corpus-missing", with_flags(replaced(ADAPT, "--corpus", "{root}/no_corpus")),
     ["no_corpus", "no such file"]),
    ("adapt-corpus-blank", with_flags(replaced(ADAPT, "--corpus", "{blank_txt}")),
     ["blank.txt", "holds no text"]),
    ("adapt-corpus-no-text-files", with_flags(replaced(ADAPT, "--corpus", "{no_text}")),
     ["no_text", "holds no text"]),
    ("adapt-preset-missing", with_flags(replaced(ADAPT, "--preset", "{root}/nothing")),
     ["No preset directory"]),
    ("adapt-preset-truncated", with_flags(replaced(ADAPT, "--preset", "{truncated_weights}")),
     ["model.weights.h5"]),
    ("pretrain-corpus-missing", with_flags(replaced(PRETRAIN, "--corpus", "{root}/no_corpus")),
     ["no_corpus"]),
    ("pretrain-vocabulary-too-small", with_flags(replaced(PRETRAIN, "--vocabulary-size", "100")),
     ["vocabulary_size", ">= 259", "100"]),
    ("pretrain-table-shorter", with_flags(PRETRAIN, "--max-sequence-length", "8"),
     ["max_sequence_length", "(8)", "(16)"]),
    ("import-gguf-missing", with_flags(["import-gguf", "{root}/none.gguf"]), ["none.gguf", "not found"]),
    ("import-gguf-dir", with_flags(["import-gguf", "{translation}"]), ["translation", "not a file"]),
    ("import-gguf-not-gguf", with_flags(["import-gguf", "{fake_gguf}"]), ["fake.gguf"]),
    # A length past the position table, a tokenizer larger than the backbone.
    ("convert-sequence-length-past-table", with_flags(CONVERT, "--sequence-length", "1000"),
     ["`sequence_length` = 1000", "`max_sequence_length` = 16"]),
    ("adapt-sequence-length-past-table", with_flags(ADAPT, "--sequence-length", "1000"),
     ["`sequence_length` = 1000", "`max_sequence_length` = 16"]),
    ("convert-vocabulary-larger", with_flags(replaced(CONVERT, "--preset", "{ar_large_vocabulary}")),
     ["29 tokens", "`vocabulary_size` = 10"]),
    ("adapt-vocabulary-larger", with_flags(replaced(ADAPT, "--preset", "{ar_large_vocabulary}")),
     ["29 tokens", "`vocabulary_size` = 10"]),
    ("finetune-vocabulary-larger", with_flags(replaced(TUNE, "--preset", "{diffusion_large_vocabulary}")),
     ["32 tokens", "`vocabulary_size` = 29"]),
    ("evaluate-vocabulary-larger", replaced(SCORE, "--preset", "{diffusion_large_vocabulary}"),
     ["32 tokens", "`vocabulary_size` = 29"]),
    ("generate-vocabulary-larger", replaced(GENERATE, "--preset", "{diffusion_large_vocabulary}"),
     ["32 tokens", "`vocabulary_size` = 29"]),
    # The AR model of the same preset: fine-tuned, scored or prompted as AR.
    ("finetune-ar-vocabulary-larger", with_flags(replaced(TUNE, "--preset", "{ar_large_vocabulary}")),
     ["29 tokens", "`vocabulary_size` = 10"]),
    ("evaluate-ar-vocabulary-larger", replaced(SCORE, "--preset", "{ar_large_vocabulary}"),
     ["29 tokens", "`vocabulary_size` = 10"]),
    ("generate-ar-vocabulary-larger", replaced(GENERATE, "--preset", "{ar_large_vocabulary}"),
     ["29 tokens", "`vocabulary_size` = 10"]),
]

# Output paths that cannot be written, or hold someone else's work.
OUTPUTS = [
    ("finetune-out-is-file", with_flags(TUNE, out="{file_txt}"), ["file.txt", "is a file"]),
    ("finetune-out-occupied", with_flags(TUNE, out="{occupied}"), ["occupied", "not a keras_textdiff run"]),
    ("finetune-out-other-run", with_flags(TUNE, out="{other_run}"), ["other_run", "another run"]),
    ("finetune-out-damaged-run", with_flags(TUNE, out="{damaged_run}"),
     ["damaged_run/run_config.json", "not valid JSON"]),
    ("finetune-out-under-file", with_flags(TUNE, out="{file_txt}/run"), ["file.txt", "not a directory"]),
    ("finetune-out-unwritable", with_flags(TUNE, out="/proc/textdiff_run"),
     ["/proc/textdiff_run", "cannot be written"]),
    ("evaluate-out-missing-dir", SCORE + ["--out", "{out}/missing/scores.json"],
     ["missing", "does not exist"]),
    ("evaluate-out-is-dir", SCORE + ["--out", "{occupied}"], ["occupied", "is a directory"]),
    ("evaluate-out-under-file", SCORE + ["--out", "{file_txt}/scores.json"], ["file.txt"]),
    ("evaluate-out-unwritable", SCORE + ["--out", "/proc/scores.json"], ["/proc", "cannot be written"]),
    ("evaluate-out-exists", SCORE + ["--out", "{file_txt}"], ["file.txt", "already exists", "--overwrite"]),
    ("convert-out-occupied", with_flags(CONVERT, out="{occupied}"), ["occupied", "not empty"]),
    ("convert-out-is-file", with_flags(CONVERT, out="{file_txt}"), ["file.txt", "not a directory"]),
    ("convert-out-unwritable", with_flags(CONVERT, out="/proc/textdiff_preset"), ["cannot be written"]),
    ("adapt-out-occupied", with_flags(ADAPT, out="{occupied}"), ["occupied", "not a keras_textdiff run"]),
    ("adapt-out-unwritable", with_flags(ADAPT, out="/proc/textdiff_run"), ["cannot be written"]),
    ("pretrain-out-is-file", with_flags(PRETRAIN, out="{file_txt}"), ["file.txt", "is a file"]),
    ("pretrain-out-other-run", with_flags(PRETRAIN, out="{other_run}"), ["other_run", "another run"]),
    ("pretrain-out-unwritable", with_flags(PRETRAIN, out="/proc/textdiff_run"), ["cannot be written"]),
    ("import-gguf-out-occupied", with_flags(["import-gguf", "{fake_gguf}"], out="{occupied}"),
     ["occupied"]),
]

CASES = ARGUMENTS + INPUTS + OUTPUTS


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_in_one_line_and_writes_nothing(argv, expected, workspace, tmp_path, capsys):
    paths = {**workspace, "out": str(tmp_path / "out")}
    argv = [a.format(**paths) for a in argv]
    expected = [e.format(**paths) for e in expected]
    before = snapshot(workspace["root"], tmp_path)

    assert main(argv) == 2

    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    command = argv[0] if argv and not argv[0].startswith("-") and argv[0] != "train" else ""
    prefix = f"textdiff {command}: error: " if command else "textdiff: error: "
    assert lines[0].startswith(prefix), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert "Traceback" not in captured.out + captured.err
    assert snapshot(workspace["root"], tmp_path) == before
    assert not os.path.exists(paths["out"])


def test_the_table_is_large():
    """Issue 18 asks for at least 120 cases over the API and the commands."""
    assert len(CASES) >= 100 and len({c[0] for c in CASES}) == len(CASES)
