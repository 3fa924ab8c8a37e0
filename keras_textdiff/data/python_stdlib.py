"""The Python standard library's own source: a real code corpus on every machine."""

import ast
import hashlib
import os
import sysconfig
import textwrap

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_TEST_DIRS = {"test", "tests", "idle_test"}


def stdlib_directory():
    """The directory holding this interpreter's standard library sources."""
    return sysconfig.get_paths()["stdlib"]


def stdlib_modules(root=None, include_tests=False):
    """List `(module_name, path)` for every `.py` file of the standard library.

    Args:
        root: directory to scan. Defaults to `stdlib_directory()`.
        include_tests: keep the `test`/`tests` packages.

    Returns:
        A sorted list of `(dotted module name, path)`.

    Example:
    >>> dict(stdlib_modules())["json.decoder"]  # doctest: +ELLIPSIS
    '.../json/decoder.py'
    """
    root = root or stdlib_directory()
    skip = _SKIP_DIRS if include_tests else _SKIP_DIRS | _TEST_DIRS
    modules = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in skip)
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1] or ["__init__"]
                modules.append((".".join(parts), path))
    return sorted(modules)


def _bucket(top_level):
    digest = hashlib.md5(top_level.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF


def split_modules(modules, validation_fraction=0.05):
    """Split modules into train/validation by top-level package.

    All of `email.*` lands on one side, decided by a stable hash of `email`,
    so validation code comes from packages never seen in training.

    Returns:
        `(train, validation)` lists of `(module_name, path)`.
    """
    tops = sorted({name.split(".")[0] for name, _ in modules})
    held_out = {t for t in tops if _bucket(t) < validation_fraction}
    if not held_out and len(tops) > 1:
        held_out = {min(tops, key=_bucket)}
    train = [m for m in modules if m[0].split(".")[0] not in held_out]
    validation = [m for m in modules if m[0].split(".")[0] in held_out]
    return train, validation


def extract_functions(source, max_chars=None):
    """Every function of `source` as a `{"prefix": signature, "target": body}` pair.

    The signature lines (decorators excluded) and the body are dedented
    together, so the `def` starts at column 0 and the body keeps one level
    of indentation. Methods and nested functions are included.

    Args:
        source: Python source text.
        max_chars: skip functions longer than this (prefix + target).

    Returns:
        A list of dicts. Raises `SyntaxError` for source that does not parse.

    Example:
    >>> extract_functions("def f(x):\\n    return x\\n")
    [{'prefix': 'def f(x):\\n', 'target': '    return x\\n'}]
    """
    source = source.replace("\r\n", "\n")
    lines = source.split("\n")
    pairs = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body_start = node.body[0].lineno - 1
        if node.body[0].lineno == node.lineno:  # `def f(): return 1`
            continue
        header = lines[node.lineno - 1 : body_start]
        body = lines[body_start : node.end_lineno]
        code = textwrap.dedent("\n".join(header + body) + "\n")
        code_lines = code.split("\n")
        prefix = "\n".join(code_lines[: len(header)]) + "\n"
        target = "\n".join(code_lines[len(header) :])
        if max_chars is None or len(prefix) + len(target) <= max_chars:
            pairs.append({"prefix": prefix, "target": target})
    return pairs


def load_python_stdlib(split="train", validation_fraction=0.05, max_chars=None, root=None):
    """Load one split of the standard library as functions and whole files.

    Args:
        split: `"train"` or `"validation"`.
        validation_fraction: share of top-level packages held out.
        max_chars: skip functions longer than this.
        root: directory to read instead of this interpreter's stdlib.

    Returns:
        `{"functions": [{"prefix", "target"}, ...], "texts": [file source]}`.
        Files that cannot be decoded or parsed are skipped.

    Example:
    >>> data = load_python_stdlib("validation", max_chars=400)
    >>> sorted(data)
    ['functions', 'texts']
    """
    if split not in ("train", "validation"):
        raise ValueError(
            f"`split` must be 'train' or 'validation'. Received: {split!r}"
        )
    train, validation = split_modules(stdlib_modules(root), validation_fraction)
    functions, texts = [], []
    for _, path in train if split == "train" else validation:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().replace("\r\n", "\n")
            functions.extend(extract_functions(text, max_chars))
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        texts.append(text)
    return {"functions": functions, "texts": texts}
