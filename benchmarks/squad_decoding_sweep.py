"""Decoders side by side on the protocol's fine-tuned AR2Diff_0 (SmolLM2, SQuAD).

A quick look before a 200-question protocol row: the same trained model
(`benchmarks/ar2diff_protocol.py`'s cached AR2Diff_0 fine-tuning stage; run
that first), decoded with each of `--decoders` (names of the protocol's
`DECODERS`) on the first `--examples` scored test questions. Prints F1,
exact match, model calls and seconds per decoder, with a few outputs, and
writes `benchmarks/results/squad-decoding-sweep-<device>.md`.

    python benchmarks/squad_decoding_sweep.py --examples 48 \\
        --decoders confidence-ordered,confidence-ordered-16,confidence-ordered-32
"""

import argparse
import os
import sys
import time

import ar2diff_protocol as protocol

from keras_textdiff import DiffusionSampler  # noqa: E402
from keras_textdiff.evaluation import metrics  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=48)
    p.add_argument("--decoders", default="confidence-ordered,confidence-ordered-32,threshold-ordered")
    own, rest = p.parse_known_args(argv)
    args = protocol.parse_args(["--rows", "AR2Diff_0", *rest])
    preset = protocol.smollm2_preset(args.work_dir)
    test = protocol.task_data(args, preset)[2][: own.examples]
    # Batches of similar lengths, as the protocol decodes them.
    test = sorted(test, key=lambda e: len(e["prefix"]))
    if not os.path.exists(os.path.join(args.work_dir, "AR2Diff_0", "finetune", "result.json")):
        sys.exit("No fine-tuned AR2Diff_0 yet: run `python benchmarks/ar2diff_protocol.py "
                 "--rows AR2Diff_0` first.")

    def build():
        model = protocol.diffusion_model(protocol.load_ar_model(preset, args), args)
        protocol.enable_lora(model, args)
        return model

    directory = os.path.join(args.work_dir, "AR2Diff_0")
    model, _ = protocol.trained(directory, build, None, args.finetune_steps, args, "finetune")
    prompts = [e["prefix"] for e in test]
    references = [e["answers"] for e in test]
    rows = []
    for name in own.decoders.split(","):
        sampler = DiffusionSampler(seed=args.seed, **protocol.decoder_config(name, args.target_length))
        start = time.time()
        outputs, calls = protocol.decode_diffusion(model, prompts, sampler, args.eval_batch_size)
        predictions = [protocol.clean(o) for o in outputs]
        rows.append((name, metrics.f1(predictions, references),
                     metrics.exact_match(predictions, references), calls, time.time() - start,
                     list(zip(predictions, references))[:4]))
        print(f"{name}: F1 {rows[-1][1]:.1f}, EM {rows[-1][2]:.1f}, {calls:.1f} calls, "
              f"{rows[-1][4]:.0f} s", flush=True)
    device = protocol.device_name()
    lines = [
        "# Decoders on the fine-tuned AR2Diff_0 (SmolLM2-135M, SQuAD)", "",
        f"Device: {device}. Command: `python {' '.join(sys.argv)}`", "",
        f"The protocol's AR2Diff_0 ({args.finetune_steps} fine-tuning steps, see "
        f"`quality-smollm2-*.md`), the first {len(test)} scored test questions "
        "(a quick look: the protocol's rows use 200).", "",
        "| decoder | F1 | EM | model calls | seconds |", "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {f:.1f} | {e:.1f} | {c:.1f} | {s:.0f} |" for n, f, e, c, s, _ in rows]
    lines += ["", "First outputs (prediction <- first reference):", ""]
    for n, *_, examples in rows:
        lines += [f"- {n}: " + "; ".join(f"`{p!r}` <- {r[0]!r}" for p, r in examples)]
    path = os.path.join(protocol.RESULTS, f"squad-decoding-sweep-{protocol.results_slug(device)}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(path)


if __name__ == "__main__":
    main()
