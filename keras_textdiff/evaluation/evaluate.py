"""One `evaluate()` for autoregressive keras-hub models and diffusion models.

Example (a stub model that always answers "Paris"):

>>> class Stub:
...     def generate(self, prompts, max_length=None):
...         return ["Paris" for _ in prompts]
>>> examples = [{"prefix": "Capital of France?", "target": "Paris",
...              "answers": ["Paris", "paris, france"]}]
>>> result = evaluate(Stub(), examples, "squad", verbose=0)
>>> result["exact_match"], result["f1"], result["predictions"]
(100.0, 100.0, ['Paris'])
"""


import keras
import keras_hub

from keras_textdiff.arguments import check_int
from keras_textdiff.arguments import check_positive_number
from keras_textdiff.checkpoints import END_OF_GENERATION_TOKENS
from keras_textdiff.data.tasks import mbpp_program
from keras_textdiff.diffusion_decoder import DiffusionDecoder
from keras_textdiff.diffusion_preprocessor import special_token_ids
from keras_textdiff.evaluation import metrics as metrics_lib
from keras_textdiff.evaluation import sandbox

TASKS = ("translation", "squad", "mbpp", "humaneval")
_REQUIRED_KEYS = {
    "translation": ("prefix", "target"),
    "squad": ("prefix", "answers"),
    "mbpp": ("prefix", "tests"),
    "humaneval": ("prefix", "prompt", "test", "entry_point"),
}
_CODE_TASKS = ("mbpp", "humaneval")


def _check_prompts(prompts):
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, (list, tuple)):
        raise ValueError(
            f"`prompts` must be a list of strings. Received: {type(prompts).__name__} "
            f"{prompts!r:.80}"
        )
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise ValueError(
                f"`prompts[{i}]` must be a string. Received: "
                f"{type(prompt).__name__} {prompt!r:.80}"
            )


def check_arguments(
    examples,
    task,
    *,
    batch_size=8,
    max_length=None,
    num_samples=1,
    k=(1,),
    sampler=None,
    timeout=10.0,
    max_workers=2,
    verbose=1,
):
    """Check `evaluate`'s arguments (all but the model), before any work.

    Raises a `ValueError` naming the first bad one; returns the k's of
    pass@k as a tuple. `evaluate_preset` calls it before loading the model.
    """
    if task not in TASKS:
        raise ValueError(
            f"Unknown `task` {task!r}. Known tasks: {', '.join(TASKS)}."
        )
    if isinstance(examples, dict) or examples is None or len(examples) == 0:
        raise ValueError(
            "`examples` must be a non-empty list of dicts. "
            f"Received: {type(examples).__name__} {examples!r:.80}"
        )
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise ValueError(
                f"`examples[{i}]` must be a dict. Received: {example!r:.80}"
            )
        missing = [key for key in _REQUIRED_KEYS[task] if key not in example]
        if missing:
            raise ValueError(
                f"`examples[{i}]` lacks {missing} needed by task={task!r} "
                f"(needs {list(_REQUIRED_KEYS[task])}). Keys: {sorted(example)}"
            )
        if not isinstance(example["prefix"], str):
            raise ValueError(
                f"`examples[{i}]['prefix']` must be a string (the prompt). "
                f"Received: {type(example['prefix']).__name__} {example['prefix']!r:.80}"
            )
    check_int("batch_size", batch_size)
    check_int("max_length", max_length, optional=True)
    check_int("num_samples", num_samples)
    check_int("max_workers", max_workers)
    check_positive_number("timeout", timeout, "a finite number of seconds > 0")
    ks = (k,) if isinstance(k, int) else tuple(k)
    if task in _CODE_TASKS:
        if not ks:
            raise ValueError("`k` must name at least one k for pass@k.")
        for value in ks:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= num_samples:
                raise ValueError(
                    f"Each `k` must be an int in [1, num_samples={num_samples}]. "
                    f"Received: k={k!r}"
                )
    return ks


def end_token_ids(tokenizer):
    """The token ids where an AR model's generation ends.

    keras-hub's own end tokens (`end_token_id`, and `end_token2_id` if the
    tokenizer has one: what `generate(stop_token_ids="auto")` stops at),
    and, as llama.cpp does, the conventional end-of-generation tokens the
    vocabulary holds (`END_OF_GENERATION_TOKENS`; SmolLM2-Instruct ends with
    `<|im_end|>` or `<|endoftext|>`), except the padding token: keras-hub's
    `generate()` reads the padding of the positions still to fill as
    generated, and would stop at once.

    Args:
        tokenizer: a keras-hub tokenizer with an `end_token_id`.

    Returns:
        A sorted tuple of ints.
    """
    ids = {tokenizer.end_token_id, getattr(tokenizer, "end_token2_id", None)}
    vocabulary = set(tokenizer.get_vocabulary())
    padding = getattr(tokenizer, "pad_token_id", None)
    for token in END_OF_GENERATION_TOKENS:
        if token in vocabulary and tokenizer.token_to_id(token) != padding:
            ids.add(tokenizer.token_to_id(token))
    return tuple(sorted(int(i) for i in ids if i is not None))


def complete(model, prompts, max_length=None):
    """Continuations of `prompts` by a keras-hub `CausalLM`, as plain text.

    Generation stops at each prompt's first end token (`end_token_ids`); the
    prompt is left out (keras-hub's `strip_prompt=True`, by tokens), the
    text is cut where an end token's text appears, and the text of the other
    special tokens (`special_token_ids`: an under-trained model's stray
    `<|padding|>`, say) is removed, so no literal special token is left in
    it. The model's own sampler is used.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        prompts: a list of strings.
        max_length: passed to `generate` (prompt included).

    Returns:
        A list of strings.

    Example:
    ```python
    causal_lm = keras_hub.models.CausalLM.from_preset("./smollm2")
    causal_lm.compile(sampler="greedy")
    complete(causal_lm, ["The capital of France is"], max_length=16)
    # [' Paris.']
    ```
    """
    tokenizer = model.preprocessor.tokenizer
    stop_token_ids = end_token_ids(tokenizer)
    outputs = model.generate(
        list(prompts),
        max_length=max_length,
        stop_token_ids=stop_token_ids,
        strip_prompt=True,
    )
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    ends = [tokenizer.id_to_token(i) for i in stop_token_ids]
    specials = [tokenizer.id_to_token(i) for i in special_token_ids(tokenizer)]
    return [_remove(_cut_at(output, ends), specials) for output in outputs]


def strip_prompt(output, prompt, round_tripped=None):
    """Remove `prompt` from the front of an AR model's `prompt + continuation`.

    Compares string prefixes: the raw prompt first, then the prompt as the
    tokenizer round-trips it, then their longest common prefix (tokenizers
    can normalize the prompt's end).

    >>> strip_prompt("def f():\\n    return 1", "def f():\\n")
    '    return 1'
    """
    for candidate in (prompt, round_tripped):
        if candidate and output.startswith(candidate):
            return output[len(candidate):]
    common = 0
    for a, b in zip(output, round_tripped or prompt):
        if a != b:
            break
        common += 1
    return output[common:]


def _cut_at(text, end_tokens):
    """`text` up to the first of `end_tokens` (strings) in it."""
    found = [text.index(token) for token in end_tokens if token and token in text]
    return text[: min(found)] if found else text


def _remove(text, tokens):
    """`text` without any of `tokens` (strings)."""
    for token in tokens:
        if token:
            text = text.replace(token, "")
    return text


def _generate_batch(model, kind, prompts, max_length):
    if kind == "diffusion":
        return list(model.generate(prompts, max_length=max_length, strip_prompt=True))
    if kind == "causal_lm":
        return complete(model, prompts, max_length)
    # Any other object with `generate(prompts[, max_length])`: its outputs
    # are taken as the continuations.
    if max_length is None:
        outputs = model.generate(prompts)
    else:
        outputs = model.generate(prompts, max_length=max_length)
    return [outputs] if isinstance(outputs, str) else list(outputs)


def generate_predictions(
    model, prompts, *, batch_size=8, max_length=None, sampler=None, verbose=1
):
    """Continuations of `prompts` (prompt stripped, cut at the end token).

    `model` is a `keras_textdiff.DiffusionDecoder` (decoded with
    `generate(..., strip_prompt=True)`), a keras-hub `CausalLM` (greedy
    unless `sampler` is given; see `complete`: it stops at every end token
    and no end token is left in the text), or any object
    whose `generate(prompts)` returns continuations. A given `sampler` is
    used for this call only; the model's own is restored afterwards.
    `prompts` must be a list of strings.
    """
    _check_prompts(prompts)
    check_int("batch_size", batch_size)
    if isinstance(model, DiffusionDecoder):
        kind = "diffusion"
    elif isinstance(model, keras_hub.models.CausalLM):
        kind = "causal_lm"
    elif callable(getattr(model, "generate", None)):
        kind = "other"
    else:
        raise ValueError(
            "`model` must be a `keras_textdiff.DiffusionDecoder`, a keras-hub "
            f"`CausalLM`, or have a `generate` method. Received: {model!r:.100}"
        )
    swap = kind == "causal_lm" or (kind == "diffusion" and sampler is not None)
    if swap:
        old_sampler = getattr(model, "sampler", None)
        if kind == "causal_lm":
            new_sampler = keras_hub.samplers.get("greedy" if sampler is None else sampler)
        else:
            new_sampler = sampler
        model.sampler = new_sampler
        model.generate_function = None
    elif sampler is not None:
        raise ValueError(
            "`sampler` applies to keras-hub `CausalLM`s and "
            f"`DiffusionDecoder`s only. Received model: {type(model).__name__}"
        )
    predictions = []
    num_batches = (len(prompts) + batch_size - 1) // batch_size
    progbar = keras.utils.Progbar(num_batches, verbose=verbose, unit_name="batch")
    try:
        for b in range(num_batches):
            batch = list(prompts[b * batch_size : (b + 1) * batch_size])
            outputs = _generate_batch(model, kind, batch, max_length)
            if len(outputs) != len(batch):
                raise ValueError(
                    f"`model.generate` returned {len(outputs)} outputs for a "
                    f"batch of {len(batch)} prompts."
                )
            predictions.extend(str(o) for o in outputs)
            progbar.update(b + 1)
    finally:
        if swap:
            model.sampler = old_sampler
            model.generate_function = None
    return predictions


def _code_programs(task, examples, samples):
    """`(programs, tests)` for `sandbox.run_many`: the code, and the tests
    the sandbox runs itself after it (so a program cannot skip them)."""
    programs, tests = [], []
    for example, candidates in zip(examples, samples):
        for code in candidates:
            if task == "mbpp":
                program, asserts = mbpp_program(example, code=code, split=True)
            else:
                program, asserts = sandbox.humaneval_program(
                    example["prompt"], code, example["test"], example["entry_point"], split=True
                )
            programs.append(program)
            tests.append(asserts)
    return programs, tests


def evaluate(
    model,
    examples,
    task,
    *,
    batch_size=8,
    max_length=None,
    num_samples=1,
    k=(1,),
    sampler=None,
    timeout=10.0,
    max_workers=2,
    verbose=1,
):
    """Generate for `examples` and score the outputs for `task`.

    Args:
        model: a `keras_textdiff.DiffusionDecoder`, any keras-hub `CausalLM`
            (greedy decoding unless `sampler`), or an object whose
            `generate(prompts)` returns continuations.
        examples: list of dicts, each with `"prefix"` (the model input) and
            `"target"`, plus per task: translation: nothing more (scored
            against `"target"`); squad: `"answers"`; mbpp: `"tests"`,
            `"setup_code"` (program = setup + generation + tests); humaneval:
            `"prompt"`, `"test"`, `"entry_point"`.
            The MBPP program is generation + `setup_code` + tests (setup
            after the code: some setups use the solution's classes).
        task: `"translation"` (bleu, chrf), `"squad"` (exact_match, f1),
            `"mbpp"` or `"humaneval"` (pass@k, run in `sandbox`).
        batch_size: prompts per `generate` call.
        max_length: passed to `generate` (total length, prompt included).
        num_samples: generations per example (code tasks: pass@k's n).
        k: the k's of pass@k, each <= `num_samples`.
        sampler: a keras-hub sampler (e.g. `keras_hub.samplers.TopKSampler`)
            for `CausalLM`s, or a `DiffusionSampler`, used for this call.
        timeout: seconds per program in the sandbox.
        max_workers: programs run in parallel.
        verbose: 0 hides the progress bar.

    Returns:
        A dict: metric name -> float (0-100), `"num_examples"`, and
        `"predictions"` (one string per example, or a list of
        `num_samples` strings per example when `num_samples > 1`).

    Example:

    >>> class Stub:
    ...     def generate(self, prompts, max_length=None):
    ...         return ["def add(a, b):\\n    return a + b" for _ in prompts]
    >>> examples = [{"prefix": "add two numbers", "target": "",
    ...              "tests": ["assert add(1, 2) == 3"], "setup_code": ""}]
    >>> evaluate(Stub(), examples, "mbpp", verbose=0)["pass@1"]
    100.0
    """
    ks = check_arguments(
        examples, task, batch_size=batch_size, max_length=max_length,
        num_samples=num_samples, k=k, sampler=sampler, timeout=timeout,
        max_workers=max_workers, verbose=verbose,
    )
    examples = list(examples)
    prompts = [example["prefix"] for example in examples for _ in range(num_samples)]
    flat = generate_predictions(
        model,
        prompts,
        batch_size=batch_size,
        max_length=max_length,
        sampler=sampler,
        verbose=verbose,
    )
    samples = [flat[i * num_samples : (i + 1) * num_samples] for i in range(len(examples))]
    first = [s[0] for s in samples]
    result = {}
    if task == "translation":
        references = [example["target"] for example in examples]
        result["bleu"] = metrics_lib.bleu(first, references)
        result["chrf"] = metrics_lib.chrf(first, references)
    elif task == "squad":
        references = [list(example["answers"]) or [example.get("target", "")] for example in examples]
        result["exact_match"] = metrics_lib.exact_match(first, references)
        result["f1"] = metrics_lib.f1(first, references)
    else:
        programs, tests = _code_programs(task, examples, samples)
        results = sandbox.run_many(
            programs, timeout=timeout, tests=tests, max_workers=max_workers
        )
        num_correct = [
            sum(r.passed for r in results[i * num_samples : (i + 1) * num_samples])
            for i in range(len(examples))
        ]
        for value in ks:
            result[f"pass@{value}"] = metrics_lib.mean_pass_at_k(num_samples, num_correct, value)
    result["num_examples"] = len(examples)
    result["predictions"] = first if num_samples == 1 else samples
    return result
