"""The quality cost of each fast decoding option, on a fine-tuned SmolLM2 model.

Decodes the same SQuAD test questions with each `DiffusionSampler` option
(the protocol's named `DECODERS`: strategies, step counts, the cache, blocks,
the paper's best of 8) on a fine-tuned mask-noise SmolLM2-135M, the
`ar2diff_protocol.py` row given by `--adapted N` (run that row first), or a
saved preset (`--model PATH`, e.g. guide 3's SQuAD model). It reports F1 and
exact match beside the trivial baselines, the model calls each option makes
(the work that threshold decoding, blocks and early stops save) and wall
seconds, then the same for a bfloat16 copy of the model (`--bfloat16`
options). Writes `benchmarks/results/fast-decoding-<model>-<device>.{md,json}`,
`<model>` the protocol row (`AR2Diff_0-block8`) or the preset's folder, and a
`.png` of the metric against calls per question.

    python benchmarks/fast_decoding.py --data ../shared/data --adapted 300

Protocol flags (`--task`, `--block-size`, `--finetune-steps`, ...) pick the
row as they did when it was trained; `--quick` reads the protocol's quick run
and writes to its work directory.
"""

import argparse
import json
import os
import sys

import decoding_sweep
import ar2diff_protocol as protocol
from results_files import current_commit

OPTIONS = ",".join([
    "paper", "resample-argmax",
    "confidence", "confidence-ordered", "confidence-ordered-nocache", "entropy-ordered",
    "margin-ordered", "confidence-ordered-16", "confidence-ordered-32",
    "threshold-ordered", "entropy-bound-ordered",
    "threshold-ordered-block16", "threshold-ordered-block8",
])
BFLOAT16_OPTIONS = "confidence-ordered,threshold-ordered"


def bfloat16_copy(model, work_dir):
    """The model with its weights in bfloat16: LoRA merged into `model`,
    saved once as a preset under `work_dir`, loaded back in bfloat16."""
    from keras_textdiff import DiffusionDecoder
    from keras_textdiff.lora import merge_lora
    from keras_textdiff.presets import save_preset

    path = os.path.join(work_dir, "fast-decoding-merged-preset")
    if not os.path.exists(os.path.join(path, "config.json")):
        merge_lora(model.backbone)
        save_preset(model, path)
    return DiffusionDecoder.from_preset(path, dtype="bfloat16")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=48)
    p.add_argument("--options", default=OPTIONS, help="decoders, in float32")
    p.add_argument("--bfloat16", default=BFLOAT16_OPTIONS, help="decoders, in bfloat16")
    p.add_argument("--update", action="store_true",
                   help="rerun only these options: the results file's other rows stay, each "
                        "with the commit it was measured at (a change to one option's code "
                        "reruns that option, not the table)")
    decoding_sweep.add_model_arguments(p)
    own, rest = p.parse_known_args(argv)
    args = protocol.parse_args(["--rows", "AR2Diff_0", *rest])
    names = decoding_sweep.checked_decoders(own.options)
    half = decoding_sweep.checked_decoders(own.bfloat16) if own.bfloat16 else []
    model, preset, described = decoding_sweep.load_model(own, args)
    test = decoding_sweep.scored_test(args, preset, own.examples)
    folder = args.work_dir if args.quick else protocol.RESULTS  # Quick runs are checks.
    device = protocol.device_name()
    name = os.path.basename(os.path.normpath(own.model or protocol.row_name(args, own.adapted)))
    stem = os.path.join(folder, f"fast-decoding-{name}-{protocol.results_slug(device)}")
    # Checked before any decoding, so a refused --update loses no work.
    kept = kept_rows(stem + ".json", described, len(test), device) if own.update else []
    commit = current_commit()
    rows = [{"dtype": "float32", **r} for r in decoding_sweep.decode_rows(model, test, names, args)]
    if half:
        work = os.path.join(args.work_dir, "fast-decoding", name)
        model = bfloat16_copy(model, work)
        rows += [{"dtype": "bfloat16", **r} for r in decoding_sweep.decode_rows(model, test, half, args)]
    command = " ".join(["python", *sys.argv])
    rows = merged_rows(kept, [{**r, "commit": commit, "command": command} for r in rows])
    os.makedirs(folder, exist_ok=True)
    metrics = protocol.TASKS[args.task]["metrics"]
    baselines = protocol.baselines(args.task, test)
    lines = [
        "# Fast decoding options: quality and cost on a fine-tuned SmolLM2-135M", "",
        f"Device: {device}, JAX. " + "; ".join(
            f"Command at {c}: `{cmd}`" for cmd, c in dict.fromkeys(
                (r["command"], r["commit"]) for r in rows)), "",
        f"Model: {described}. Task: {protocol.TASKS[args.task]['title']}, the first "
        f"{len(test)} scored test examples, in batches of {args.eval_batch_size} of similar "
        "length (the paper's decoder: one prompt at a time, 8 candidates).", "",
        "Model calls: forward passes per batch (a full pass or a window pass; with a cache, "
        "its first full pass and a refresh pass after each block but the last); a batch runs "
        "until its slowest row is done. Calls per question: those each question was still "
        "decoding in, what it would cost alone (blank where measured before it was counted). "
        "Seconds: wall time of all batches, compilation included.", "",
        "| decoding | dtype | " + " | ".join(protocol.METRIC_NAMES[m] for m in metrics)
        + " | model calls | calls per question | seconds | commit |",
        "|---|---|" + "---|" * len(metrics) + "---|---|---|---|",
    ]
    lines += [f"| {r['decoding']} | {r['dtype']} | " + " | ".join(f"{r[m]:.1f}" for m in metrics)
              + f" | {r['model_calls']:.1f} | "
              + ("" if r.get("calls_per_question") is None else f"{r['calls_per_question']:.1f}")
              + f" | {r['seconds']:.0f} | {r['commit']} |" for r in rows]
    lines += ["", "Trivial baselines on the same examples: " + "; ".join(
        f"{b}: {protocol.format_scores(args.task, v)}" for b, v in baselines.items()) + ".", ""]
    lines += ["Decoders (`benchmarks/ar2diff_protocol.py`'s `DECODERS`):", ""]
    lines += [f"- `{n}`: `{protocol.DECODERS[n]}`"
              for n in dict.fromkeys(r["decoding"] for r in rows)]
    lines += ["", "First outputs (prediction <- reference):", ""]
    lines += [f"- {r['decoding']} ({r['dtype']}): " + "; ".join(
        f"`{p!r}` <- {e!r}" for p, e in r["first"]) for r in rows]
    with open(stem + ".json", "w") as f:
        json.dump({"device": device, "model": described, "examples": len(test),
                   "baselines": baselines, "rows": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(rows, metrics[0], baselines, name, stem + ".png")
    print("\n".join(lines))


def plot(rows, metric, baselines, model, path):
    """`metric` against model calls per question (per batch where a row
    predates that count), a point per decoder and dtype, the trivial
    baselines as gray lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, r in enumerate(rows):  # A marker per row, named in the legend (points may overlap).
        calls = r.get("calls_per_question") or r["model_calls"]
        label = r["decoding"] + (" (bfloat16)" if r["dtype"] == "bfloat16" else "")
        ax.plot(calls, r[metric], "osD^vPX*<>"[i % 10], color=f"C{i % 10}", label=label,
                markersize=8, alpha=0.8)
    for i, (name, scores) in enumerate(baselines.items()):
        ax.axhline(scores[metric], color="gray", linestyle="--" if i == 0 else ":",
                   label=f"baseline: {name}")
    ax.set_xlabel("model calls per question (per batch where not counted)")
    ax.set_ylabel(protocol.METRIC_NAMES[metric])
    ax.set_ylim(bottom=0)
    ax.set_title(f"Decoding options on {model}")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def kept_rows(path, model, examples, device):
    """The rows of the results file at `path`, for --update to keep; refused
    if that file measured another model, number of examples or device (its
    seconds would not compare)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        old = json.load(f)
    if (old["model"], old["examples"], old["device"]) != (model, examples, device):
        sys.exit(f"--update: {path} measured {old['model']} on {old['examples']} examples on "
                 f"{old['device']}, not {model} on {examples} on {device}; rerun every option "
                 "without --update.")
    return old["rows"]


def merged_rows(kept, rows):
    """`rows` in place of the same decoders' rows among `kept`, whose other
    rows stay (in their order, new decoders after)."""
    new = {(r["decoding"], r["dtype"]): r for r in rows}
    return [new.pop((r["decoding"], r["dtype"]), r) for r in kept] + list(new.values())


if __name__ == "__main__":
    main()
