"""The `textdiff` command line."""

import argparse
import os
import sys


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
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
