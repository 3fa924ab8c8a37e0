"""Resumable training runs: checkpoints every K steps, resume after any stop.

A run lives in one output directory:

- `run_config.json`: the full configuration (and the command line) that
  reproduces the run. A directory holding another run's configuration is
  refused, so checkpoints of different runs never mix.
- `checkpoints/step-XXXXXXXX.npz`: every variable of the model (weights,
  the step counters and the random-number states of noise and dropout)
  and of the optimizer. Written to a temporary file and renamed, so a
  `kill -9` at any moment leaves the last complete checkpoint readable.
- `logs/`: TensorBoard logs.
- `train_time.json`: the training seconds up to the last checkpoint, summed
  over every process that trained this run.
- `metrics.json`: written at the end.

Running the same command again resumes from the last checkpoint: the data
pipeline is rebuilt and the batches already seen are skipped, so the resumed
run sees the same batches with the same random draws and ends with the same
weights as an uninterrupted one. Running it again after it finished keeps its
`metrics.json`.

Every recipe checks its arguments, its input files and its output directory
before it loads, trains or writes anything, and creates the run directory
only once the model and the data are ready: a run that fails on bad input
leaves nothing behind, and the corrected command starts afresh.
"""

import contextlib
import glob
import json
import os
import re
import time

import keras
import numpy as np

from keras_textdiff.arguments import check_int
from keras_textdiff.arguments import check_positive_number
from keras_textdiff.diffusion_decoder import check_sequence_length
from keras_textdiff.distribution import describe as describe_distribution
from keras_textdiff.distribution import distributed_recipe
from keras_textdiff.lora import check_lora_rank
from keras_textdiff.lora import enable_lora
from keras_textdiff.lora import merge_lora

CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.json"
TIME_FILE = "train_time.json"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT = re.compile(r"step-(\d+)\.npz$")


def _write_json(path, data):
    """Write `data` to `path` atomically: whole, or not at all."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _check_training_arguments(steps, batch_size, learning_rate, checkpoint_every, seed):
    """The arguments every training recipe takes, checked before any work."""
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_int("seed", seed, 0)
    check_positive_number("learning_rate", learning_rate, "a finite number > 0 (e.g. 1e-3)")


class RunDirectory:
    """The output directory of one training run (see the module docstring).

    Args:
        path: the directory; created if needed.
        config: a JSON-serializable dict, the run's full configuration.
            Keys in `ignored_keys` may differ on resume (e.g. `"verbose"`).
        ignored_keys: configuration keys that do not change the result.
        create: `False` only checks that `path` can hold this run (a
            `ValueError` says why not) and writes nothing; `create()` then
            makes it, once the run is ready to train.
    """

    def __init__(self, path, config, ignored_keys=("verbose",), create=True):
        self.path = os.path.abspath(path)
        self.config = dict(config)
        self.ignored_keys = tuple(ignored_keys)
        self._check()
        if create:
            self.create()

    def _check(self):
        """Raise a `ValueError` unless `path` can hold this run; write nothing."""
        from keras_textdiff.presets import check_writable

        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise ValueError(
                f"{self.path!r} is a file. Pass the path of a new or empty "
                "directory (or of this run's directory, to resume it)."
            )
        config_path = os.path.join(self.path, CONFIG_FILE)
        if os.path.isfile(config_path):
            try:
                with open(config_path, encoding="utf-8") as f:
                    saved = json.load(f)
            except ValueError as error:
                raise ValueError(
                    f"{config_path!r} is not valid JSON ({error}): the run "
                    "directory is damaged. Pass a new output directory."
                ) from None
            different = sorted(
                key
                for key in set(saved) | set(self.config)
                if key not in self.ignored_keys
                and saved.get(key) != self.config.get(key)
            )
            if different:
                details = ", ".join(
                    f"{k}: {saved.get(k)!r} there, {self.config.get(k)!r} now"
                    for k in different
                )
                raise ValueError(
                    f"{self.path!r} holds the checkpoints of another run "
                    f"({details}). Pass a new output directory, or the same "
                    "arguments as that run to resume it."
                )
        elif os.path.isdir(self.path) and os.listdir(self.path):
            raise ValueError(
                f"{self.path!r} is not empty and holds no {CONFIG_FILE}: it is "
                "not a keras_textdiff run. Pass a new or empty directory."
            )
        check_writable(self.path)

    def create(self):
        """Make the directory (checked again) and write the configuration.

        Also removes what a checkpoint write that was killed left behind.
        """
        self._check()
        os.makedirs(os.path.join(self.path, CHECKPOINT_DIR), exist_ok=True)
        config_path = os.path.join(self.path, CONFIG_FILE)
        if not os.path.isfile(config_path):
            _write_json(config_path, self.config)
        for temporary in glob.glob(os.path.join(self.path, CHECKPOINT_DIR, "*.tmp.npz")):
            os.remove(temporary)

    # --- checkpoints ---

    def checkpoints(self):
        """`[(step, path)]` of the complete checkpoints, oldest first."""
        found = []
        for path in glob.glob(os.path.join(self.path, CHECKPOINT_DIR, "*.npz")):
            match = _CHECKPOINT.search(path)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def save_checkpoint(self, model, step, keep=2):
        """Save every model and optimizer variable at `step`, atomically."""
        arrays = {
            f"model_{i}": keras.ops.convert_to_numpy(v)
            for i, v in enumerate(model.variables)
        }
        arrays.update(
            {
                f"optimizer_{i}": keras.ops.convert_to_numpy(v)
                for i, v in enumerate(model.optimizer.variables)
            }
        )
        path = os.path.join(self.path, CHECKPOINT_DIR, f"step-{step:08d}.npz")
        temporary = path + ".tmp.npz"
        try:
            np.savez(temporary, **arrays)
            os.replace(temporary, path)
        except BaseException:  # A full disk, say: no half-written file stays.
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise
        for _, old in self.checkpoints()[:-keep]:
            os.remove(old)
        return path

    def restore_latest(self, model):
        """Load the last checkpoint into `model` (compiled); return its step."""
        checkpoints = self.checkpoints()
        if not checkpoints:
            return 0
        step, path = checkpoints[-1]
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            with np.load(path) as arrays:
                groups = (("model", model.variables), ("optimizer", model.optimizer.variables))
                for prefix, variables in groups:
                    count = sum(1 for key in arrays if key.startswith(prefix + "_"))
                    if count != len(variables):
                        raise ValueError(
                            f"{count} {prefix} variables saved, "
                            f"{len(variables)} in the model"
                        )
                    for i, variable in enumerate(variables):
                        variable.assign(arrays[f"{prefix}_{i}"])
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(
                f"Checkpoint {path!r} cannot be restored ({error}). It is "
                "corrupt or from another model; delete it to resume from the "
                "one before, or start a new output directory."
            ) from error
        return step

    def train_time(self, step):
        """`{"seconds", "seconds_from_step"}`: the seconds spent training
        this run up to checkpoint `step`, summed over the processes that
        trained it, and the step they count from (0, unless the run began
        from a checkpoint copied in or saved before its time was kept)."""
        try:
            with open(os.path.join(self.path, TIME_FILE), encoding="utf-8") as f:
                kept = json.load(f)
            if kept["step"] == step:
                return {"seconds": float(kept["seconds"]), "seconds_from_step": int(kept["from_step"])}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return {"seconds": 0.0, "seconds_from_step": step}

    def write_train_time(self, step, seconds, from_step):
        _write_json(
            os.path.join(self.path, TIME_FILE),
            {"step": step, "seconds": seconds, "from_step": from_step},
        )

    def write_metrics(self, metrics):
        _write_json(os.path.join(self.path, METRICS_FILE), metrics)

    def read_metrics(self):
        """The run's `metrics.json` as a dict; `{}` if it has none (or a damaged one)."""
        try:
            with open(os.path.join(self.path, METRICS_FILE), encoding="utf-8") as f:
                metrics = json.load(f)
        except (OSError, ValueError):
            return {}
        return metrics if isinstance(metrics, dict) else {}


def train(
    model,
    dataset,
    steps,
    run,
    checkpoint_every=100,
    callbacks=(),
    verbose="auto",
):
    """Train `model` for `steps` steps in `run`, resuming if it can.

    Args:
        model: a compiled Keras model.
        dataset: a `tf.data.Dataset` of ready `(x, y)` batches (preprocessed,
            shuffled with a seed, repeated). It must yield the same batches
            each time it is iterated, in any process, as
            `keras_textdiff.data.to_dataset` and `text_dataset` do (their
            shuffles are stateless). `Dataset.shuffle(seed=...)` does not:
            it reshuffles for every new iterator, and `fit()` makes more
            than one.
        steps: total training steps.
        run: a `RunDirectory`.
        checkpoint_every: steps between checkpoints.
        callbacks: more Keras callbacks.
        verbose: passed to `fit()` (a progress bar by default).

    Returns:
        A dict: `"steps"`, `"resumed_from"`, `"seconds"` (training time
        summed over every process that trained the run, from step
        `"seconds_from_step"`: see `RunDirectory.train_time`) and the
        last logs of `fit()`. For a run that had already finished, the
        logs are those its `metrics.json` kept.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an int >= 1. Received: {steps!r}")
    checkpoint_every = max(1, min(int(checkpoint_every), steps))
    start = run.restore_latest(model)
    if start >= steps:
        return {**run.read_metrics(), **run.train_time(start), "steps": start, "resumed_from": start}
    if start:
        print(f"Resuming {run.path} from step {start}.")
    # One `fit()`, one pass of one iterator over `dataset` (seeded tf.data
    # reshuffles differently for each new iterator in a process): epochs are
    # checkpoint intervals, and a resumed run starts a fresh process's first
    # iterator past the batches already trained.
    checkpoints = _Checkpoints(run, start, steps, checkpoint_every)
    history = keras.Model.fit(
        model,
        dataset.skip(start),
        steps_per_epoch=checkpoint_every,
        epochs=start // checkpoint_every + -(-(steps - start) // checkpoint_every),
        initial_epoch=start // checkpoint_every,
        shuffle=False,
        callbacks=[
            checkpoints,
            keras.callbacks.TensorBoard(os.path.join(run.path, "logs")),
            *callbacks,
        ],
        verbose=verbose,
    )
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    return {"steps": steps, "resumed_from": start, **run.train_time(steps), **logs}


class _Checkpoints(keras.callbacks.Callback):
    """Save at the end of each interval; stop at exactly `steps`. Intervals
    count from `start` (the resumed step), which need not be a multiple of
    `checkpoint_every`. Each checkpoint's training time (this process's,
    plus what the run's earlier processes spent to reach `start`) is kept
    beside it."""

    def __init__(self, run, start, steps, checkpoint_every):
        super().__init__()
        self.run = run
        self.start = start
        self.steps = steps
        self.checkpoint_every = checkpoint_every
        self.epoch = 0
        self.earlier = run.train_time(start)

    def on_train_begin(self, logs=None):
        self.began = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        # Intervals since the resume (`fit` numbers them from `initial_epoch`).
        self.epoch = epoch - self.start // self.checkpoint_every

    def on_train_batch_end(self, batch, logs=None):
        if self.start + self.epoch * self.checkpoint_every + batch + 1 >= self.steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        # Variables are only in sync with training at epoch ends (on JAX).
        step = min(self.start + (self.epoch + 1) * self.checkpoint_every, self.steps)
        self.run.save_checkpoint(self.model, step)
        self.run.write_train_time(
            step,
            self.earlier["seconds"] + time.time() - self.began,
            self.earlier["seconds_from_step"],
        )


# --- the command-line recipes ------------------------------------------------


def load_model(preset):
    """A `DiffusionDecoder` or an AR keras-hub `CausalLM` from a preset dir.

    The preset's files are checked first (`presets.check_preset`): a
    missing, truncated or corrupt one is reported by name.
    """
    import keras_hub

    import keras_textdiff
    from keras_textdiff.ar2diff import load_causal_lm
    from keras_textdiff.diffusion_decoder import DiffusionDecoder
    from keras_textdiff.diffusion_decoder import check_vocabulary
    from keras_textdiff.presets import check_preset

    keras_textdiff.load()  # Registers the classes a preset may name.
    preset = os.fspath(preset)
    check_preset(preset)
    task_config = os.path.join(preset, "task.json")
    try:
        if os.path.isfile(task_config):
            with open(task_config, encoding="utf-8") as f:
                task = json.load(f)
            if "DiffusionDecoder" in str(task.get("registered_name", "")):
                return DiffusionDecoder.from_preset(preset)
        model = load_causal_lm(preset)
    except OSError as error:
        if error.filename is not None:
            raise  # It names the file (permission denied, say).
        # h5py's errors do not ("Unable to synchronously open file").
        raise ValueError(
            f"The preset {preset!r} cannot be read ({error}). It is damaged: "
            "save or copy it again."
        ) from error
    if not isinstance(model, keras_hub.models.CausalLM):
        raise ValueError(f"{preset!r} holds no CausalLM.")
    if model.preprocessor is not None:  # An AR model clamps such ids too.
        check_vocabulary(model.backbone, model.preprocessor.tokenizer)
    return model


def is_diffusion(model):
    from keras_textdiff.diffusion_decoder import DiffusionDecoder

    return isinstance(model, DiffusionDecoder)


# What an AR model reads between prompt and answer (the diffusion layout has
# its end token there): without it, an AR model cannot tell where the prompt
# stops, in training or when prompted.
AR_SEPARATOR = "\n"


def ar_examples(examples):
    """`examples` with the AR separator closing each prompt."""
    return [{**e, "prefix": e["prefix"] + AR_SEPARATOR} for e in examples]


def pair_dataset(model, examples, batch_size, seed):
    """Repeated, seeded training batches of `{"prefix", "target"}` examples.

    Diffusion models train on packed pairs; AR models on
    `prefix + AR_SEPARATOR + target` as one text (their usual fine-tuning).
    """
    from keras_textdiff.data import text_dataset
    from keras_textdiff.data import to_dataset

    if is_diffusion(model):
        return to_dataset(examples, model.preprocessor, batch_size, seed=seed, repeat=True)
    texts = [e["prefix"] + e["target"] for e in ar_examples(examples)]
    # Like the diffusion layout, train only on whole examples: the AR
    # preprocessor would cut a long one, answer first.
    lengths = [len(ids) for ids in model.preprocessor.tokenizer(texts)]
    room = model.preprocessor.sequence_length - 2  # start and end tokens
    kept = [t for t, n in zip(texts, lengths) if n <= room]
    if not kept:
        raise ValueError(
            f"None of the {len(texts)} examples fits sequence_length="
            f"{model.preprocessor.sequence_length}. Raise `sequence_length`."
        )
    if len(kept) < len(texts):
        print(
            f"pair_dataset: dropped {len(texts) - len(kept)} of {len(texts)} "
            f"examples longer than sequence_length="
            f"{model.preprocessor.sequence_length}; {len(kept)} remain."
        )
    return text_dataset(kept, model.preprocessor, batch_size, seed=seed, repeat=True)


def set_sequence_length(model, sequence_length):
    """Make `model` train and generate at `sequence_length` tokens.

    Raises `ValueError` if the backbone's position table is shorter.
    """
    check_sequence_length(model.backbone, sequence_length)
    model.preprocessor.sequence_length = sequence_length


def _compile(model, learning_rate):
    optimizer = keras.optimizers.AdamW(learning_rate, global_clipnorm=1.0)
    if is_diffusion(model):
        model.compile(optimizer=optimizer)
    else:
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )


def _enable_lora(model, lora_rank):
    """Enable LoRA on `model`'s backbone if `lora_rank` is set."""
    if lora_rank is not None:
        enable_lora(model.backbone, lora_rank)


def _save(model, run):
    """Save `model` to `run`'s preset, LoRA updates merged into the kernels.

    The preset then holds plain weights: it loads without LoRA.
    """
    from keras_textdiff.presets import save_preset

    merge_lora(model.backbone)
    return save_preset(model, os.path.join(run.path, "preset"), overwrite=True)


def _squad_context_chars(task, context_chars):
    """`finetune`'s `context_chars`, checked: 500 by default for SQuAD."""
    if task != "squad":
        if context_chars is not None:
            raise ValueError(
                f"`context_chars` (--context-chars) cuts SQuAD contexts; task {task!r} has "
                "none. Leave it out."
            )
        return None
    check_int("context_chars", context_chars, 0, optional=True)
    return 500 if context_chars is None else context_chars


def _write_metrics(run, result, steps):
    """Write `result` as the run's metrics, unless the run had finished before
    this call: its `metrics.json` (loss, accuracy) is then kept as it is."""
    if result["resumed_from"] < steps or not run.read_metrics():
        run.write_metrics(result)


def _dtype_policy_name():
    """The dtype policy models are built with (`keras.config.dtype_policy()`,
    set by `textdiff --dtype`); part of a run's configuration."""
    return keras.config.dtype_policy().name


# A run may resume on another number of devices (checkpoints are plain arrays).
IGNORED_KEYS = ("command_line", "distribution")


@distributed_recipe(preset="preset")
def finetune(
    preset,
    task,
    data,
    out_dir,
    steps,
    batch_size=8,
    learning_rate=1e-3,
    checkpoint_every=100,
    seed=0,
    split="train",
    sequence_length=None,
    lora_rank=None,
    command=None,
    verbose="auto",
    distribution=None,
    context_chars=None,
):
    """Fine-tune a diffusion or AR preset on a task; resumable.

    The paper fine-tunes with a constant learning rate of 1e-3 (the default).
    `sequence_length` (default: the preset's) sets the length of the packed
    examples, e.g. longer for SQuAD's contexts; examples that do not fit
    whole are left out, and the number is printed.
    Writes `out_dir/preset/` (the fine-tuned model) and `metrics.json`;
    running it again after an interruption resumes from the last checkpoint.
    `distribution`: `None` (one device), `"data"` or `"BATCHxMODEL"` (see
    `keras_textdiff.distribution`), as in every recipe here.

    SQuAD's training contexts are cut to about `context_chars` characters
    around the answer (`keras_textdiff.data.crop_squad_context`; by default
    500, as in the README's SmolLM2 runs; 0 keeps them whole): a step costs
    no more, and more questions fit the packed length. Other tasks take no
    `context_chars`.

    `lora_rank` (an int >= 1) trains LoRA updates of the attention only
    (`keras_textdiff.lora`); they are merged into the kernels before the
    preset is saved, so it loads without LoRA. Models are built with the
    global dtype policy (`keras.config.set_dtype_policy`, e.g.
    `"mixed_bfloat16"`), as in every recipe here; it is part of the run's
    configuration.

    Example:
    ```python
    finetune("./ar2diff/preset", "squad", "dev-v1.1.json", "./squad_run",
             steps=1000, lora_rank=8)
    model = keras_textdiff.DiffusionDecoder.from_preset("./squad_run/preset")
    ```
    """
    from keras_textdiff.data import crop_squad_context
    from keras_textdiff.data import load_task
    from keras_textdiff.presets import check_preset

    check_lora_rank(lora_rank)
    _check_training_arguments(steps, batch_size, learning_rate, checkpoint_every, seed)
    check_int("sequence_length", sequence_length, 1, optional=True)
    context_chars = _squad_context_chars(task, context_chars)
    check_preset(preset)
    config = {
        "command": "finetune",
        "preset": os.path.abspath(preset) if os.path.isdir(preset) else preset,
        "task": task,
        "data": os.path.abspath(data) if data else None,
        "split": split,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "sequence_length": sequence_length,
        "lora_rank": lora_rank,
        **({"context_chars": context_chars} if task == "squad" else {}),
        "dtype": _dtype_policy_name(),
        "command_line": command,
        "distribution": describe_distribution(distribution),
    }
    examples = load_task(task, data, split)  # Bad names/files fail first.
    if context_chars:
        examples = [crop_squad_context(e, context_chars) for e in examples]
    run = RunDirectory(out_dir, config, ignored_keys=IGNORED_KEYS, create=False)
    keras.utils.set_random_seed(seed)
    model = load_model(preset)
    if sequence_length is not None:
        set_sequence_length(model, sequence_length)
    _enable_lora(model, lora_rank)
    _compile(model, learning_rate)
    dataset = pair_dataset(model, examples, batch_size, seed)
    run.create()
    result = train(model, dataset, steps, run, checkpoint_every, verbose=verbose)
    result["preset"] = _save(model, run)
    result["num_examples"] = len(examples)
    _write_metrics(run, result, steps)
    return result


@distributed_recipe(preset="preset")
def evaluate_preset(
    preset, task, data, split="test", limit=None, out=None, distribution=None,
    decoding=None, overwrite=False, **kwargs
):
    """Score a preset on a task split; write the metrics as JSON to `out`.

    An existing `out` file is replaced only with `overwrite=True`.

    `limit`: score the first `limit` examples (an int >= 1; `None`: all).
    `decoding`: `DiffusionSampler` arguments that replace the preset's own
    sampler's (e.g. `{"strategy": "threshold", "num_steps": 32}`). Every
    argument, the preset's files and `out` (a file in an existing, writable
    directory) are checked before the model loads.
    """
    from keras_textdiff.data import load_task
    from keras_textdiff.evaluation import evaluate
    from keras_textdiff.evaluation.evaluate import check_arguments
    from keras_textdiff.presets import check_output_file
    from keras_textdiff.presets import check_preset
    from keras_textdiff.samplers.diffusion_sampler import DiffusionSampler

    check_int("limit", limit, 1, optional=True)
    if decoding:
        DiffusionSampler(**decoding)  # Bad options fail here, before any work.
    if out is not None:
        check_output_file(out)
        if os.path.lexists(out) and not overwrite:
            raise ValueError(
                f"'{os.path.abspath(out)}' already exists. Pass another --out "
                "(`out`), or --overwrite (`overwrite=True`) to replace it."
            )
    check_preset(preset)
    examples = load_task(task, data, split)
    if limit is not None:
        examples = examples[:limit]
    check_arguments(examples, task, **kwargs)
    model = load_model(preset)
    if not is_diffusion(model):
        if decoding:
            raise ValueError(
                f"{preset!r} is an autoregressive model, which decodes greedily; "
                f"the diffusion decoding options {sorted(decoding)} do not apply to it."
            )
        model.compile(sampler="greedy")
        examples = ar_examples(examples)
    elif decoding:
        model.compile(sampler=DiffusionSampler(**{**model.sampler.get_config(), **decoding}))
    result = evaluate(model, examples, task, **kwargs)
    summary = {k: v for k, v in result.items() if k != "predictions"}
    summary.update({"preset": preset, "task": task, "split": split})
    if out is not None:
        _write_json(os.path.abspath(out), {**summary, "predictions": result["predictions"]})
    return summary


def read_corpus(corpus):
    """`"python-stdlib"` (the default), a text file, or a directory of them."""
    if corpus == "python-stdlib":
        from keras_textdiff.data.python_stdlib import load_python_stdlib

        return load_python_stdlib("train")["texts"]
    if os.path.isfile(corpus):
        paths = [corpus]
    elif os.path.isdir(corpus):
        paths = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(corpus)
            for name in names
            if name.endswith((".txt", ".py", ".md"))
        )
    else:
        raise ValueError(
            f"--corpus {corpus!r}: no such file or directory. Pass "
            "`python-stdlib`, a text file, or a directory of .txt/.py/.md files."
        )
    texts = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    if not any(t.strip() for t in texts):
        raise ValueError(f"--corpus {corpus!r} holds no text.")
    return texts


def _abs(path):
    return os.path.abspath(path) if path and os.path.exists(path) else path


def _train_on_texts(
    model, texts, run, steps, batch_size, learning_rate, checkpoint_every, seed, verbose
):
    """Compile, train on a raw-text corpus in `run` (created here), save,
    write metrics."""
    from keras_textdiff.data import text_dataset

    _compile(model, learning_rate)
    dataset = text_dataset(
        texts, model.preprocessor, batch_size, seed=seed, repeat=True, verbose=False
    )
    run.create()
    result = train(model, dataset, steps, run, checkpoint_every, verbose=verbose)
    result.update({"preset": _save(model, run), "num_texts": len(texts)})
    _write_metrics(run, result, steps)
    return result


@distributed_recipe(preset="preset")
def adapt_run(
    preset,
    out_dir,
    steps,
    corpus="python-stdlib",
    converter=None,
    batch_size=8,
    learning_rate=1e-3,
    checkpoint_every=100,
    seed=0,
    lora_rank=None,
    command=None,
    verbose="auto",
    distribution=None,
):
    """AR2Diff_N as a resumable run: convert (if needed), train N steps.

    `preset` is an AR preset (converted with `converter`, by default
    `AR2DiffConverter()`) or a `DiffusionDecoder` preset (trained on).
    `lora_rank` (an int >= 1) trains LoRA updates of the attention only,
    merged into the kernels before the preset is saved (see `finetune`);
    pass it here, not on `converter`, so that it also applies to a
    `DiffusionDecoder` preset.

    Example:
    ```python
    adapt_run("./smollm2", "./ar2diff", steps=1000, corpus="corpus.txt",
              lora_rank=16)
    ```
    """
    from keras_textdiff.ar2diff import AR2DiffConverter
    from keras_textdiff.presets import check_preset

    converter = converter or AR2DiffConverter()
    if check_lora_rank(lora_rank) is not None and converter.lora_rank is not None:
        raise ValueError(
            "Pass `lora_rank` to `adapt_run` or to its converter, not both. "
            f"Received: lora_rank={lora_rank!r} and "
            f"converter.lora_rank={converter.lora_rank!r}."
        )
    _check_training_arguments(steps, batch_size, learning_rate, checkpoint_every, seed)
    check_preset(preset)
    config = {
        "command": "adapt",
        "preset": _abs(preset),
        "corpus": _abs(corpus),
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "converter": {
            k: v for k, v in vars(converter).items() if k != "sampler"
        },
        "lora_rank": lora_rank,
        "dtype": _dtype_policy_name(),
        "command_line": command,
        "distribution": describe_distribution(distribution),
    }
    texts = read_corpus(corpus)
    run = RunDirectory(out_dir, config, ignored_keys=IGNORED_KEYS, create=False)
    keras.utils.set_random_seed(seed)
    model = load_model(preset)
    if not is_diffusion(model):
        model = converter.convert(model)
    _enable_lora(model, lora_rank)
    return _train_on_texts(
        model, texts, run, steps, batch_size, learning_rate, checkpoint_every,
        seed, verbose,
    )


@distributed_recipe(backbone="GPT2Backbone")
def pretrain(
    out_dir,
    steps,
    objective="diffusion",
    corpus="python-stdlib",
    size="tiny",
    sequence_length=128,
    max_sequence_length=None,
    vocabulary_size=4096,
    batch_size=16,
    learning_rate=1e-3,
    checkpoint_every=100,
    seed=0,
    command=None,
    verbose="auto",
    distribution=None,
):
    """Pretrain a GPT-2-shaped model from scratch on a corpus; resumable.

    `objective="diffusion"` trains a `DiffusionDecoder` on prefix-LM splits
    of the corpus (the paper's pretraining); `"ar"` trains a keras-hub
    `GPT2CausalLM`, the baseline. A byte-level BPE is learned on the corpus
    first (deterministic, so a resumed run rebuilds the same one).
    `max_sequence_length` (default `sequence_length`) sizes the position
    table, so the model can later be fine-tuned on longer examples.
    """
    import keras_hub

    from keras_textdiff.bpe import train_byte_pair_tokenizer
    from keras_textdiff.diffusion_decoder import DiffusionDecoder
    from keras_textdiff.diffusion_preprocessor import DiffusionPreprocessor
    from keras_textdiff.quickstart import MODEL_SIZES
    from keras_textdiff.quickstart import gpt2_backbone

    if objective not in ("diffusion", "ar"):
        raise ValueError(f"`objective` must be 'diffusion' or 'ar'. Received: {objective!r}")
    if size not in MODEL_SIZES:
        raise ValueError(f"`size` must be one of {sorted(MODEL_SIZES)}. Received: {size!r}")
    _check_training_arguments(steps, batch_size, learning_rate, checkpoint_every, seed)
    check_int("sequence_length", sequence_length, 1)
    check_int("max_sequence_length", max_sequence_length, 1, optional=True)
    # 256 bytes, the two special tokens below, and at least one merge.
    check_int("vocabulary_size", vocabulary_size, 259)
    positions = max_sequence_length or sequence_length
    if positions < sequence_length:
        raise ValueError(
            f"`max_sequence_length` ({positions}) must be >= `sequence_length` "
            f"({sequence_length})."
        )
    config = {
        "command": "pretrain",
        "objective": objective,
        "corpus": _abs(corpus),
        "size": size,
        "sequence_length": sequence_length,
        "max_sequence_length": max_sequence_length,
        "vocabulary_size": vocabulary_size,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "dtype": _dtype_policy_name(),
        "command_line": command,
        "distribution": describe_distribution(distribution),
    }
    texts = read_corpus(corpus)
    run = RunDirectory(out_dir, config, ignored_keys=IGNORED_KEYS, create=False)
    keras.utils.set_random_seed(seed)
    # keras-hub's GPT-2 tokenizer pads with id 0, and its `generate()` stops
    # at once if padding equals the end token: id 0 is a padding token.
    tokenizer = train_byte_pair_tokenizer(
        texts,
        vocabulary_size=vocabulary_size,
        special_tokens=("<|padding|>", "<|endoftext|>"),
    )
    backbone = gpt2_backbone(size, tokenizer.vocabulary_size(), positions)
    if objective == "diffusion":
        model = DiffusionDecoder(
            backbone, DiffusionPreprocessor(tokenizer, sequence_length, seed=seed)
        )
    else:
        model = keras_hub.models.GPT2CausalLM(
            backbone,
            keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length),
        )
    return _train_on_texts(
        model, texts, run, steps, batch_size, learning_rate, checkpoint_every,
        seed, verbose,
    )
