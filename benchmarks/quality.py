"""The paper's comparison at CPU scale: AR vs diffusion vs AR2Diff_N, per task.

For each task (translation, SQuAD, MBPP) this runs, with the same tiny
GPT-2-shaped model and the same budget:

- AR: pretrain AR on the corpus -> fine-tune AR -> evaluate (greedy);
- diffusion: pretrain diffusion (prefix-LM) -> fine-tune -> evaluate;
- AR2Diff_N: the AR checkpoint -> adapt N steps -> fine-tune -> evaluate.

Pretraining runs once per objective and is shared by the tasks. Every stage
is a resumable run directory under `--work-dir`, so an interrupted benchmark
picks up where it stopped. Writes `benchmarks/results/quality-cpu.md` and a
JSON next to it.

    python benchmarks/quality.py --data ../shared/data

The same protocol on the real pretrained SmolLM2-135M-Instruct (AR vs
AR2Diff_N on SQuAD; `ar2diff_protocol.py`, whose flags follow):

    python benchmarks/quality.py --base smollm2 --data ../shared/data
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from keras_textdiff import recipes  # noqa: E402
from results_files import cpu_description  # noqa: E402
from results_files import write_results  # noqa: E402
from keras_textdiff.data import load_task  # noqa: E402
from keras_textdiff.evaluation import evaluate  # noqa: E402

TASKS = {
    "translation": ("bible_en_fr", ["bleu", "chrf"]),
    "squad": ("squad/dev-v1.1.json.gz", ["exact_match", "f1"]),
    "mbpp": ("mbpp/mbpp.jsonl", ["pass@1"]),
}


def fitting_examples(model, examples, limit):
    """Evaluation examples whose prompt and reference fit the model."""
    kept = model.preprocessor.fitting_pairs(examples)
    return kept[:limit]


def main():
    import sys

    if sys.argv[1:3] == ["--base", "smollm2"]:
        import ar2diff_protocol

        return ar2diff_protocol.main(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--work-dir", default="benchmarks/runs/quality")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--sequence-length", type=int, default=192)
    parser.add_argument(
        "--squad-sequence-length", type=int, default=384,
        help="SQuAD's contexts are long: about 70%% of its test questions fit 384 tokens",
    )
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--adapt-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--eval-examples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    work = os.path.abspath(args.work_dir)
    common = dict(batch_size=args.batch_size, verbose=2)
    started = time.time()

    lengths = {task: args.sequence_length for task in TASKS}
    lengths["squad"] = args.squad_sequence_length
    pretrained = {}
    for objective in ("ar", "diffusion"):
        result = recipes.pretrain(
            os.path.join(work, f"pretrain-{objective}"), args.pretrain_steps,
            objective=objective, sequence_length=args.sequence_length,
            max_sequence_length=max(lengths.values()), **common,
        )
        pretrained[objective] = result["preset"]
    adapted = recipes.adapt_run(
        pretrained["ar"], os.path.join(work, "adapt"), args.adapt_steps, **common
    )["preset"]

    rows = []
    for task in args.tasks:
        relative, metric_names = TASKS[task]
        data = os.path.join(args.data, relative)
        starts = {"AR": pretrained["ar"], "diffusion": pretrained["diffusion"],
                  f"AR2Diff_{args.adapt_steps}": adapted}
        # The same evaluation examples for every model: those that fit the
        # diffusion layout (prompt + reference in the task's length).
        reference = recipes.load_model(pretrained["diffusion"])
        recipes.set_sequence_length(reference, lengths[task])
        test = fitting_examples(reference, load_task(task, data, "test"), args.eval_examples)
        for name, preset in starts.items():
            run = os.path.join(work, f"{task}-{name}")
            tuned = recipes.finetune(
                preset, task, data, run, args.finetune_steps,
                sequence_length=lengths[task], **common,
            )["preset"]
            model = recipes.load_model(tuned)
            examples = test
            if not recipes.is_diffusion(model):
                model.compile(sampler="greedy")
                examples = recipes.ar_examples(examples)
            start = time.time()
            scores = evaluate(
                model, examples, task, batch_size=8,
                max_length=lengths[task], verbose=0,
            )
            seconds = time.time() - start
            row = {
                "task": task, "model": name, "examples": len(examples),
                "eval_seconds": round(seconds, 1),
                **{m: round(float(scores[m]), 2) for m in metric_names if m in scores},
            }
            print(row)
            rows.append(row)

    lines = [
        "# Quality at CPU scale: AR vs diffusion vs AR2Diff_N",
        "",
        f"Device: {cpu_description()}, JAX. Total time "
        f"{(time.time() - started) / 60:.0f} min.",
        f"Model: GPT-2 shape `tiny` (2 layers, 128 wide), BPE 4096 learned on "
        f"the Python standard library; sequence length {args.sequence_length} "
        f"(SQuAD {args.squad_sequence_length}).",
        f"Steps: pretrain {args.pretrain_steps}, adapt {args.adapt_steps}, "
        f"fine-tune {args.finetune_steps} (batch {args.batch_size}, AdamW 1e-3).",
        f"Evaluation: first {args.eval_examples} test examples that fit; "
        "diffusion decoding 10 steps, temperature 0.2, best of 8; AR greedy.",
        "",
        "| task | model | examples | metrics | eval s |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        metrics = ", ".join(
            f"{k} {v}" for k, v in row.items()
            if k not in ("task", "model", "examples", "eval_seconds")
        )
        lines.append(
            f"| {row['task']} | {row['model']} | {row['examples']} | {metrics} "
            f"| {row['eval_seconds']} |"
        )
    write_results("quality-cpu", args, rows, lines)


if __name__ == "__main__":
    main()
