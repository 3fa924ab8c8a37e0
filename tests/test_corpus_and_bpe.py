import pytest

from keras_textdiff.bpe import train_byte_pair_tokenizer
from keras_textdiff.data import extract_functions
from keras_textdiff.data import load_python_stdlib
from keras_textdiff.data import split_modules
from keras_textdiff.data import stdlib_modules

SOURCE = '''import x

class A:
    @property
    def size(self,
             scale=2):
        """Doc."""
        def inner(y):
            return y * scale
        return inner(3)

async def fetch(url):
    return url
'''


def test_extract_functions_gives_signature_and_body():
    pairs = extract_functions(SOURCE)
    by_prefix = {p["prefix"]: p["target"] for p in pairs}
    assert by_prefix == {
        "def size(self,\n         scale=2):\n": (
            '    """Doc."""\n    def inner(y):\n        return y * scale\n'
            "    return inner(3)\n"
        ),
        "def inner(y):\n": "    return y * scale\n",
        "async def fetch(url):\n": "    return url\n",
    }
    assert len(extract_functions(SOURCE, max_chars=40)) == 2


def test_real_stdlib_split_is_by_package_and_deterministic():
    modules = stdlib_modules()
    assert len(modules) > 300 and "json.decoder" in dict(modules)
    train, validation = split_modules(modules)
    assert split_modules(modules) == (train, validation)
    top = lambda ms: {name.split(".")[0] for name, _ in ms}
    assert validation and not top(train) & top(validation)


def test_fake_tree_skips_site_packages_and_broken_files(tmp_path):
    for path, text in {
        "good.py": "def f(a):\n    return a\n",
        "broken.py": "def (:\n",
        "pkg/__init__.py": "def g():\n    pass\n",
        "site-packages/evil.py": "def h():\n    pass\n",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    names = [name for name, _ in stdlib_modules(str(tmp_path))]
    assert names == ["broken", "good", "pkg"]
    both = [load_python_stdlib(s, 0.5, root=str(tmp_path)) for s in ("train", "validation")]
    prefixes = sorted(p["prefix"] for d in both for p in d["functions"])
    assert prefixes == ["def f(a):\n", "def g():\n"]
    with pytest.raises(ValueError, match="split"):
        load_python_stdlib("test")


def test_bpe_round_trips_python_exactly():
    corpus = [SOURCE, "for i in range(10):\n\tprint('héllo', i)\n\n"] * 30
    tokenizer = train_byte_pair_tokenizer(corpus, vocabulary_size=400)
    assert tokenizer.vocabulary_size() <= 400
    assert tokenizer.token_to_id("<|endoftext|>") == tokenizer.end_token_id
    for text in corpus[:2] + ["x = {'ü': 1}\n\n\n    \tdef  y():\n"]:
        ids = tokenizer(text)
        assert tokenizer.detokenize(ids) == text
    # Merges were learned: common code compresses below one token per byte.
    assert len(tokenizer(SOURCE)) < 0.6 * len(SOURCE.encode())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"texts": []}, "empty"),
        ({"texts": ["a"], "vocabulary_size": 100}, "vocabulary_size"),
        ({"texts": ["a"], "special_tokens": ("<pad>",)}, "endoftext"),
    ],
)
def test_bpe_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_byte_pair_tokenizer(**kwargs)
