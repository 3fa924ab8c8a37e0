"""The command line as a user meets it, in a fresh process: a quick `--help`
that shows every default, no TensorFlow banner, one line and exit code 2 on
bad input, and JAX chosen without the command restarting itself."""

import argparse
import os
import pathlib
import subprocess
import sys

from keras_textdiff import cli
from reliability_setup import workspace  # noqa: F401 (a fixture)

ROOT = pathlib.Path(cli.__file__).resolve().parents[1]
# What TensorFlow, absl and XLA print when they start, unless silenced.
BANNER = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuda drivers", "cpu_feature_guard",
          "cuInit", "TF_ENABLE_ONEDNN_OPTS")


def run(*args, timeout=300):
    """Run Python with `args` as a user's shell would: no backend chosen."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_importing_the_command_line_imports_no_framework():
    code = ("import sys, keras_textdiff.cli; "
            "print([m for m in ('keras', 'tensorflow', 'jax', 'keras_hub') if m in sys.modules])")
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_shows_every_default():
    parser = cli.build_parser()
    formatter = cli._HelpFormatter("textdiff")
    for name, command in parser.commands.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction) or action.required or not action.option_strings:
                continue
            text = formatter._get_help_string(action) or ""
            assert "default" in text, f"textdiff {name} {action.option_strings[0]}: {text!r}"


def test_bad_input_is_one_line_without_banner(workspace, tmp_path):
    result = run("-m", "keras_textdiff.cli", "finetune", "--preset", str(tmp_path / "nothing"),
                 "--task", "translation", "--data", workspace["translation"],
                 "--out", str(tmp_path / "run"), "--steps", "1")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("textdiff finetune: error: No preset directory")
    assert "nothing" in lines[0]
    assert os.listdir(tmp_path) == []


def test_a_command_runs_on_jax_without_banner(workspace):
    # What the `textdiff` console script does, then which backend Keras took.
    code = ("import sys; from keras_textdiff.cli import main; code = main(sys.argv[1:]); "
            "import keras; print(keras.backend.backend()); sys.exit(code)")
    result = run("-c", code, "generate", "--preset", workspace["diffusion"], "cat",
                 "--max-length", "12")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("cat") and result.stdout.strip().endswith("jax")
    assert not [line for line in BANNER if line in result.stderr], result.stderr
    assert result.stderr.strip() == ""
