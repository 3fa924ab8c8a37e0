"""The `textdiff` command line."""

import argparse
import contextlib
import os
import sys

# The dtype policies `--dtype` accepts (`keras.config.set_dtype_policy`).
DTYPES = ("float32", "mixed_bfloat16", "bfloat16")


def _quickstart(args):
    from keras_textdiff.quickstart import run_quickstart

    run_quickstart(
        output_dir=args.output_dir,
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
    from keras_textdiff.presets import save_preset

    check_output_dir(args.out, args.overwrite)
    model = _converter(args).convert(args.preset)
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
        distribution=_distribution(args),
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
        out=args.out, batch_size=args.batch_size, max_length=args.max_length,
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


def _lora_rank(text):
    """`--lora-rank`: an int >= 1 (argparse reports a bad one, exit code 2)."""
    from keras_textdiff.lora import check_lora_rank

    try:
        return check_lora_rank(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be an int >= 1, the rank of the LoRA updates (e.g. 8). "
            f"Received: {text!r}"
        ) from None


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
            "the saved preset's weights; None trains every weight",
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
        "devices, weights over MODEL (JAX only)",
    )


def _add_task_flags(parser, split):
    parser.add_argument("--task", required=True, help="translation, squad, mbpp or humaneval")
    parser.add_argument("--data", default=None, help="the task's data file or directory")
    parser.add_argument("--split", default=split)


def _add_conversion_flags(parser):
    parser.add_argument(
        "--attention", default="bidirectional", choices=["bidirectional", "prefix", "block"],
        help="block: causal prefix (the AR model's), target blocks of --block-size",
    )
    parser.add_argument(
        "--block-size", type=int, default=None,
        help="target positions per block, with --attention block",
    )
    parser.add_argument(
        "--target-length", type=int, default=None,
        help="target region: this many positions after the prompt (default: to the end)",
    )
    parser.add_argument(
        "--sequence-length", type=int, default=None,
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
        "--annealing-steps", type=int, default=None,
        help="ramp attention from causal to bidirectional over K training steps",
    )
    parser.add_argument(
        "--add-mask-token", action="store_true",
        help="append a [MASK] token and train with mask noise",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="textdiff",
        description="Text diffusion for Keras 3 (keras_textdiff).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser(
        "quickstart",
        help="Train a small diffusion model on Python's standard library "
        "source, evaluate it, sample from it, and save it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    quick.add_argument("--output-dir", default="textdiff_runs/quickstart")
    quick.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    quick.add_argument("--train-seconds", type=float, default=300, help="training time budget")
    quick.add_argument("--max-steps", type=int, default=3000, help="training step cap")
    quick.add_argument("--batch-size", type=int, default=32)
    quick.add_argument("--sequence-length", type=int, default=64)
    quick.add_argument("--vocabulary-size", type=int, default=2048)
    quick.add_argument("--seed", type=int, default=0)
    quick.set_defaults(run=_quickstart)

    convert = commands.add_parser(
        "convert",
        help="AR2Diff: turn an autoregressive keras-hub preset into a "
        "diffusion model preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    convert.add_argument(
        "--preset", required=True,
        help="local preset directory, Hugging Face folder, or handle",
    )
    convert.add_argument("--out", required=True, help="output preset directory")
    _add_conversion_flags(convert)
    convert.set_defaults(run=_convert)

    adapt = commands.add_parser(
        "adapt",
        help="AR2Diff_N: convert (if needed) and continue pretraining N steps "
        "with the diffusion loss on a text corpus.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    adapt.add_argument(
        "--preset", required=True,
        help="an AR preset (converted first) or a DiffusionDecoder preset",
    )
    adapt.add_argument("--steps", type=int, required=True, help="N, training steps")
    adapt.add_argument("--out", required=True, help="run directory (the model goes to OUT/preset)")
    adapt.add_argument(
        "--corpus", default="python-stdlib",
        help="`python-stdlib`, a text file, or a directory of .txt/.py/.md files",
    )
    adapt.add_argument("--batch-size", type=int, default=8, help="examples per training step")
    adapt.add_argument(
        "--learning-rate", type=float, default=1e-3,
        help="AdamW learning rate, constant",
    )
    adapt.add_argument(
        "--checkpoint-every", type=int, default=100,
        help="steps between checkpoints (resumable runs)",
    )
    adapt.add_argument(
        "--seed", type=int, default=0,
        help="seed of initialization, data order and noise",
    )
    _add_training_flags(adapt)
    _add_conversion_flags(adapt)
    _add_distribution_flags(adapt)
    adapt.set_defaults(run=_adapt)

    pre = commands.add_parser(
        "pretrain",
        help="Pretrain a model from scratch on a text corpus: prefix-LM "
        "diffusion, or AR for the baseline (resumable).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pre.add_argument("--out", required=True, help="run directory")
    pre.add_argument("--steps", type=int, required=True)
    pre.add_argument("--objective", default="diffusion", choices=["diffusion", "ar"])
    pre.add_argument(
        "--corpus", default="python-stdlib",
        help="`python-stdlib`, a text file, or a directory of .txt/.py/.md files",
    )
    pre.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    pre.add_argument("--sequence-length", type=int, default=128)
    pre.add_argument(
        "--max-sequence-length", type=int, default=None,
        help="position table size (default: --sequence-length); larger lets "
        "`finetune --sequence-length` go longer",
    )
    pre.add_argument("--vocabulary-size", type=int, default=4096)
    pre.add_argument("--batch-size", type=int, default=16, help="examples per training step")
    pre.add_argument(
        "--learning-rate", type=float, default=1e-3,
        help="AdamW learning rate, constant",
    )
    pre.add_argument(
        "--checkpoint-every", type=int, default=100,
        help="steps between checkpoints (resumable runs)",
    )
    pre.add_argument(
        "--seed", type=int, default=0,
        help="seed of initialization, data order and noise",
    )
    _add_training_flags(pre, lora=False)
    _add_distribution_flags(pre)
    pre.set_defaults(run=_pretrain)

    gguf = commands.add_parser(
        "import-gguf",
        help="Import a GGUF Llama checkpoint (e.g. SmolLM2) as a keras-hub preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    gguf.add_argument("file", help="the .gguf file")
    gguf.add_argument("--out", required=True, help="output preset directory")
    gguf.add_argument("--overwrite", action="store_true", help="replace --out")
    gguf.set_defaults(run=_import_gguf)

    tune = commands.add_parser(
        "finetune",
        help="Fine-tune a diffusion or AR preset on a task (resumable: run "
        "the same command again after an interruption).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tune.add_argument("--preset", required=True)
    _add_task_flags(tune, "train")
    tune.add_argument("--out", required=True, help="run directory")
    tune.add_argument("--steps", type=int, required=True)
    tune.add_argument("--batch-size", type=int, default=8, help="examples per training step")
    tune.add_argument("--learning-rate", type=float, default=1e-3, help="constant (the paper)")
    tune.add_argument(
        "--sequence-length", type=int, default=None,
        help="packed example length (default: the preset's); longer examples are left out",
    )
    tune.add_argument(
        "--checkpoint-every", type=int, default=100,
        help="steps between checkpoints (resumable runs)",
    )
    tune.add_argument(
        "--seed", type=int, default=0,
        help="seed of initialization, data order and noise",
    )
    _add_training_flags(tune)
    _add_distribution_flags(tune)
    tune.set_defaults(run=_finetune)

    score = commands.add_parser(
        "evaluate",
        help="Score a preset on a task: BLEU/chrF, SQuAD EM/F1 or pass@k.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    score.add_argument("--preset", required=True)
    _add_task_flags(score, "test")
    score.add_argument("--limit", type=int, default=None, help="first N examples")
    score.add_argument("--out", default=None, help="JSON file for metrics and predictions")
    score.add_argument("--batch-size", type=int, default=8)
    score.add_argument("--max-length", type=int, default=None)
    score.add_argument("--num-samples", type=int, default=1)
    score.add_argument(
        "--strategy", default=None,
        help="diffusion decoding strategy (default: the preset's sampler's): resample, "
        "argmax_unrolled, or for mask-noise models confidence, entropy, margin, threshold, "
        "entropy_bound",
    )
    score.add_argument("--num-steps", type=int, default=None, help="denoising steps")
    score.add_argument("--temperature", type=float, default=None, help="0: argmax")
    score.add_argument("--threshold", type=float, default=None, help="for --strategy threshold")
    score.add_argument("--entropy-bound", type=float, default=None,
                       help="for --strategy entropy_bound: summed entropy (nats) per step")
    _add_distribution_flags(score)
    score.set_defaults(run=_evaluate)

    generate = commands.add_parser(
        "generate", help="Complete prompts with a diffusion or AR preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    generate.add_argument("--preset", required=True)
    generate.add_argument("prompts", nargs="+")
    generate.add_argument("--max-length", type=int, default=None)
    generate.add_argument("--num-steps", type=int, default=None, help="denoising steps")
    _add_distribution_flags(generate)
    generate.set_defaults(run=_generate)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if "KERAS_BACKEND" not in os.environ:
        # Keras picks its backend at import, which importing this package
        # already did: start again on JAX (XLA on CPU and GPU), unless the
        # user chose a backend.
        os.environ["KERAS_BACKEND"] = "jax"
        os.execv(sys.executable, [sys.executable, "-m", "keras_textdiff.cli", *argv])
    try:
        with _dtype_policy(getattr(args, "dtype", None)):
            args.run(args)
    except ValueError as error:
        # Bad input: one clear line, not a traceback.
        print(f"textdiff {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
