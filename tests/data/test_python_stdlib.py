import ast
import hashlib
import os

import pytest

from keras_textdiff.data.python_stdlib import extract_functions
from keras_textdiff.data.python_stdlib import load_python_stdlib
from keras_textdiff.data.python_stdlib import split_modules
from keras_textdiff.data.python_stdlib import stdlib_directory
from keras_textdiff.data.python_stdlib import stdlib_modules


def _tops(modules):
    return {name.split(".")[0] for name, _ in modules}


def test_real_stdlib_modules():
    modules = stdlib_modules()
    names = dict(modules)
    assert len(modules) > 300
    assert modules == sorted(modules)
    assert names["json.decoder"].startswith(stdlib_directory())
    assert names["json.decoder"].endswith("decoder.py")
    assert names["json"].endswith("__init__.py")
    assert {"os", "email.mime.text", "asyncio.tasks"} <= set(names)
    assert not any("site-packages" in path for path in names.values())
    assert not any(
        part in ("test", "tests", "idle_test")
        for name in names
        for part in name.split(".")
    )
    with_tests = dict(stdlib_modules(include_tests=True))
    assert len(with_tests) > len(names)
    assert "test.support" in with_tests


def test_real_stdlib_split_is_disjoint_by_package_and_deterministic():
    modules = stdlib_modules()
    train, validation = split_modules(modules)
    assert split_modules(stdlib_modules()) == (train, validation)
    assert train and validation
    assert not _tops(train) & _tops(validation)
    assert sorted(train + validation) == modules
    # Packages are never cut: all of `email.*` is on one side.
    email = {name for name, _ in modules if name.split(".")[0] == "email"}
    assert email <= {n for n, _ in train} or email <= {n for n, _ in validation}


def test_split_uses_md5_of_the_top_level_name():
    # A golden value: the same on every machine and every run (md5, not
    # Python's salted `hash()`).
    modules = [(f"pkg{i}.mod", f"/p/pkg{i}/mod.py") for i in range(30)]
    _, validation = split_modules(modules, validation_fraction=0.2)
    assert [name for name, _ in validation] == ["pkg4.mod", "pkg5.mod", "pkg11.mod"]
    for name, _ in validation:
        top = name.split(".")[0].encode()
        assert int(hashlib.md5(top).hexdigest(), 16) / 2**128 < 0.2


def test_split_falls_back_to_a_non_empty_validation():
    modules = [("b.c", "b/c.py"), ("a", "a.py"), ("b", "b/__init__.py")]
    # md5("a") -> 0.0498..., md5("b") -> 0.57...: nothing is below 1e-9.
    train, validation = split_modules(modules, validation_fraction=1e-9)
    assert validation == [("a", "a.py")]
    assert train == [("b.c", "b/c.py"), ("b", "b/__init__.py")]
    assert split_modules(modules, validation_fraction=0.0)[1] == []
    with pytest.raises(ValueError, match="validation_fraction"):
        split_modules(modules, validation_fraction=1.5)


SOURCE = '''"""Module docstring."""
import functools


class Cache:
    """A class."""

    @functools.lru_cache(
        maxsize=None)
    def lookup(self, key,
               default=None,
               *, strict: bool = False) -> "int | None":  # type: ignore
        """Return the value of `key`.

Unindented docstring line.
        """
        def normalize(k):
            return k.lower()

        return self._data.get(normalize(key), default)

    def one_liner(self): return 1


async def fetch(url):
    # Leading comment.
    async with session(url) as response:
        return await response.text()


def tabbed(x):
\tif x:
\t\treturn "é\\t"
\treturn None
'''

EXPECTED = [
    {
        "prefix": (
            "def lookup(self, key,\n"
            "           default=None,\n"
            '           *, strict: bool = False) -> "int | None":'
            "  # type: ignore\n"
        ),
        "target": (
            '    """Return the value of `key`.\n'
            "\n"
            "Unindented docstring line.\n"
            '    """\n'
            "    def normalize(k):\n"
            "        return k.lower()\n"
            "\n"
            "    return self._data.get(normalize(key), default)\n"
        ),
    },
    {
        "prefix": "def normalize(k):\n",
        "target": "    return k.lower()\n",
    },
    {
        "prefix": "async def fetch(url):\n",
        "target": (
            "    # Leading comment.\n"
            "    async with session(url) as response:\n"
            "        return await response.text()\n"
        ),
    },
    {
        "prefix": "def tabbed(x):\n",
        "target": '\tif x:\n\t\treturn "é\\t"\n\treturn None\n',
    },
]


def test_extract_functions_gives_exact_prefix_and_target():
    assert extract_functions(SOURCE) == EXPECTED
    # Windows line ends give the same result.
    assert extract_functions(SOURCE.replace("\n", "\r\n")) == EXPECTED
    # A file without a final newline still gives targets that end with one.
    assert extract_functions("def f():\n    pass") == [
        {"prefix": "def f():\n", "target": "    pass\n"}
    ]


def test_extract_functions_max_chars():
    sizes = [len(f["prefix"]) + len(f["target"]) for f in EXPECTED]
    limit = sorted(sizes)[1]
    kept = extract_functions(SOURCE, max_chars=limit)
    assert kept == [f for f, size in zip(EXPECTED, sizes) if size <= limit]
    assert len(kept) == 2


def test_extract_functions_raises_on_bad_source():
    with pytest.raises(SyntaxError):
        extract_functions("def broken(:\n    pass\n")


def _write_tree(root):
    files = {
        "top.py": b"def top(a):\n    return a\n",
        "pkg_a/__init__.py": b"def init():\n    pass\n",
        "pkg_a/sub.py": b"def sub():\r\n    return 1\r\n",
        "pkg_a/tests/test_sub.py": b"def test_sub():\n    pass\n",
        "pkg_b/mod.py": b"class B:\n    def method(self):\n        return 2\n",
        "broken.py": b"def broken(:\n    pass\n",
        "latin1.py": b"def f():\n    return '\xe9'\n",
        "site-packages/evil.py": b"def evil():\n    pass\n",
        "pkg_b/__pycache__/mod.py": b"def cached():\n    pass\n",
        "notes.txt": b"not python\n",
    }
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)


def test_fake_tree(tmp_path):
    _write_tree(tmp_path)
    root = str(tmp_path)
    names = [name for name, _ in stdlib_modules(root)]
    assert names == ["broken", "latin1", "pkg_a", "pkg_a.sub", "pkg_b.mod", "top"]
    assert "pkg_a.tests.test_sub" in dict(stdlib_modules(root, include_tests=True))

    splits = {
        split: load_python_stdlib(split, validation_fraction=0.5, root=root)
        for split in ("train", "validation")
    }
    assert splits["train"]["functions"] and splits["validation"]["functions"]
    assert load_python_stdlib("train", 0.5, root=root) == splits["train"]
    # The broken and undecodable files are skipped, functions and texts alike.
    loaded = splits["train"]["modules"] + splits["validation"]["modules"]
    assert sorted(loaded) == ["pkg_a", "pkg_a.sub", "pkg_b.mod", "top"]
    prefixes = sorted(
        f["prefix"] for data in splits.values() for f in data["functions"]
    )
    assert prefixes == [
        "def init():\n",
        "def method(self):\n",
        "def sub():\n",
        "def top(a):\n",
    ]
    texts = splits["train"]["texts"] + splits["validation"]["texts"]
    assert "def sub():\n    return 1\n" in texts  # `\r\n` normalized.
    assert not any("evil" in text or "broken" in text for text in texts)
    for data in splits.values():
        assert len(data["texts"]) == len(data["modules"])
    train_tops = {m.split(".")[0] for m in splits["train"]["modules"]}
    validation_tops = {m.split(".")[0] for m in splits["validation"]["modules"]}
    assert not train_tops & validation_tops


def test_bad_split_raises():
    with pytest.raises(ValueError, match="'train', 'validation'"):
        load_python_stdlib("test")


def test_real_stdlib_validation_split():
    data = load_python_stdlib("validation", max_chars=600)
    assert len(data["functions"]) > 100
    assert len(data["texts"]) == len(data["modules"]) > 0
    for function in data["functions"]:
        prefix, target = function["prefix"], function["target"]
        assert prefix.startswith(("def ", "async def "))
        assert prefix.endswith("\n") and target.endswith("\n")
        assert len(prefix) + len(target) <= 600
    # The split's files are exactly its modules and all of them parse.
    validation = dict(split_modules(stdlib_modules())[1])
    assert set(data["modules"]) <= set(validation)
    for text in data["texts"][:20]:
        ast.parse(text)
    # They are the running interpreter's own library, where `os` was loaded
    # from: each text is its module's file there, read with universal
    # newlines.
    root = stdlib_directory()
    assert os.path.samefile(root, os.path.dirname(os.__file__))
    assert os.path.isfile(os.path.join(root, "os.py"))
    for name, text in zip(data["modules"], data["texts"]):
        path = os.path.join(root, *name.split("."))
        path = path + ".py" if os.path.isfile(path + ".py") else os.path.join(path, "__init__.py")
        with open(path, encoding="utf-8") as file:
            assert text == file.read(), name
