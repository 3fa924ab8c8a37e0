"""Decoders side by side on the protocol's fine-tuned AR2Diff_0 (SmolLM2).

A quick look before a 200-example protocol row: the same trained model
(`benchmarks/ar2diff_protocol.py`'s cached AR2Diff_0 fine-tuning stage for
`--task`; run that first), decoded with each of `--decoders` (names of the
protocol's `DECODERS`) on the first `--examples` scored test examples.
Prints the task's metrics, model calls and seconds per decoder, with a few
outputs, and writes `benchmarks/results/<task>-decoding-sweep-<device>.md`.

`--adapted N` decodes the protocol's AR2Diff_N instead (with its
`--block-size B`, the block-diffusion row AR2Diff_N-blockB).
`--model PATH` decodes a saved `DiffusionDecoder` preset instead (guide 3's
SQuAD model, say), on the test examples that fit its sequence length, and
writes `<task>-decoding-sweep-<preset folder>-<device>.md`. With `--quick`
(the protocol's flag) the file goes to the work directory, not the results.

    python benchmarks/decoding_sweep.py --examples 48 \\
        --decoders confidence-ordered,confidence-ordered-16,confidence-ordered-32
    python benchmarks/decoding_sweep.py --task translation --examples 48 \\
        --decoders threshold-ordered,threshold-ordered-block16
    python benchmarks/decoding_sweep.py --examples 20 \\
        --model guide_runs/finetune_qa_and_code/squad_model \\
        --decoders threshold-ordered,entropy-bound-ordered
"""

import argparse
import os
import sys
import time

import ar2diff_protocol as protocol
from results_files import current_commit

from keras_textdiff import DiffusionDecoder  # noqa: E402
from keras_textdiff import DiffusionSampler  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=48)
    p.add_argument("--decoders", default="confidence-ordered,confidence-ordered-32,threshold-ordered")
    add_model_arguments(p)
    own, rest = p.parse_known_args(argv)
    args = protocol.parse_args(["--rows", "AR2Diff_0", *rest])
    names = checked_decoders(own.decoders)
    model, preset, described = load_model(own, args)
    test = scored_test(args, preset, own.examples)
    rows = decode_rows(model, test, names, args)
    baselines = protocol.baselines(args.task, test)
    device = protocol.device_name()
    title = protocol.TASKS[args.task]["title"]
    metrics = protocol.TASKS[args.task]["metrics"]
    names = [protocol.METRIC_NAMES[m] for m in metrics]
    lines = [
        f"# Decoders on {own.model or f'the fine-tuned {described.split()[0]} (SmolLM2-135M)'} ({title})", "",
        f"Device: {device}. Command at {current_commit()}: `python {' '.join(sys.argv)}`", "",
        f"{described}, the first {len(test)} scored test examples "
        "(a quick look beside the protocol's rows).", "",
        "| decoder | " + " | ".join(names) + " | model calls | seconds |",
        "|---|" + "---|" * len(names) + "---|---|",
    ]
    lines += [f"| {r['decoding']} | " + " | ".join(f"{r[m]:.1f}" for m in metrics)
              + f" | {r['model_calls']:.1f} | {r['seconds']:.0f} |" for r in rows]
    lines += ["", "Trivial baselines on the same examples: " + "; ".join(
        f"{b}: {protocol.format_scores(args.task, v)}" for b, v in baselines.items()) + "."]
    lines += ["", "First outputs (prediction <- reference):", ""]
    lines += [f"- {r['decoding']}: " + "; ".join(f"`{p!r}` <- {e!r}" for p, e in r["first"])
              for r in rows]
    slug = protocol.results_slug(device)
    name = f"-{os.path.basename(os.path.normpath(own.model))}" if own.model else ""
    folder = args.work_dir if args.quick else protocol.RESULTS  # Quick runs are checks.
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{args.task}-decoding-sweep{name}-{slug}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(path)


def add_model_arguments(parser):
    """The flags that pick the model to decode."""
    parser.add_argument("--model", help="a saved DiffusionDecoder preset to decode instead of "
                                        "the protocol's fine-tuned model")
    parser.add_argument("--adapted", type=int, default=0,
                        help="the protocol's AR2Diff_N row to decode: its N (with the "
                             "protocol's --block-size, its block-diffusion row)")


def checked_decoders(names):
    """`names` (comma-separated) as a list, each one of the protocol's `DECODERS`."""
    names = names.split(",")
    unknown = [d for d in names if d not in protocol.DECODERS]
    if unknown:
        sys.exit(f"Unknown decoders {unknown}: choose from {sorted(protocol.DECODERS)}.")
    return names


def load_model(own, args):
    """`(model, preset its tokenizer comes from, a line that describes it)`."""
    if own.model:
        return saved_model(own.model, args)
    return protocol_model(args, own.adapted)


def scored_test(args, preset, examples):
    """The first `examples` scored test examples, in batches of similar
    lengths (as the protocol decodes them)."""
    test = protocol.task_data(args, preset)[2][:examples]
    if not test:
        sys.exit(f"No {args.task} test example fits {args.test_length} tokens with a "
                 f"{args.target_length}-token answer: nothing to decode.")
    return sorted(test, key=lambda e: len(e["prefix"]))


def decode_rows(model, test, names, args):
    """Decode `test` with each decoder of `names`: a row of scores, model
    calls and seconds (compilation included) per decoder, and its first
    outputs."""
    rows = []
    for name in names:
        config = protocol.decoder_config(name, args.target_length)
        sampler = DiffusionSampler(seed=args.seed, **config)
        batch = 1 if config["num_samples"] > 1 else args.eval_batch_size
        start = time.time()
        outputs, calls = protocol.decode_diffusion(model, [e["prefix"] for e in test], sampler, batch)
        predictions = [protocol.clean(o, args.task) for o in outputs]
        scores = protocol.score(args.task, predictions, test)
        rows.append({"decoding": name, **scores, **calls,
                     "seconds": time.time() - start,
                     "first": [(p, reference(e)) for p, e in zip(predictions, test)][:4]})
        print(f"{name}: {protocol.format_scores(args.task, scores)}, "
              f"{calls['model_calls']:.1f} calls ({calls['calls_per_question']:.1f} per question), "
              f"{rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def protocol_model(args, n=0):
    """The protocol's cached fine-tuning of AR2Diff_n for `args.task`, the
    SmolLM2 preset its tokenizer comes from, and a line that describes it."""
    name = protocol.row_name(args, n)
    directory = os.path.join(protocol.task_dir(args), name)
    if not os.path.exists(os.path.join(directory, "finetune", "result.json")):
        rows = f"AR2Diff_N --adapt-steps {n}" if n else "AR2Diff_0"
        sys.exit(f"No fine-tuned {name} yet: run `python benchmarks/ar2diff_protocol.py "
                 f"--task {args.task} --rows {rows}` (with the same flags) first.")
    preset = protocol.smollm2_preset(args.work_dir)
    model = protocol.trained(directory, lambda: protocol.finetuning_start(args, preset, n),
                             None, args.finetune_steps, args, "finetune")[0]
    described = (f"{name} ({args.finetune_steps} fine-tuning steps, see "
                 "`quality-smollm2-*.md`)")
    return model, preset, described


def saved_model(path, args):
    """A saved `DiffusionDecoder` preset; `args` take its target and sequence
    lengths (the test examples must fit them)."""
    if not os.path.exists(os.path.join(path, "config.json")):
        sys.exit(f"--model {path}: no saved preset there (a folder with config.json).")
    model = DiffusionDecoder.from_preset(path)
    args.target_length = model.preprocessor.target_length
    args.test_length = model.preprocessor.sequence_length
    described = (f"`{path}` (target {args.target_length} tokens in a sequence of "
                 f"{args.test_length})")
    return model, path, described


def reference(example):
    """The first reference answer, or the target text."""
    return example["answers"][0] if "answers" in example else example["target"]


if __name__ == "__main__":
    main()
