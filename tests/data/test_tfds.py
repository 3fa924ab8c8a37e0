"""`load_tfds` on a tiny TFDS dataset built inside the test (no network)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_textdiff.data import load_tfds


class KtdTinyQa(tfds.core.GeneratorBasedBuilder):
    """Three question/answer records with a nested, list-valued feature."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "question": tfds.features.Text(),
                    "label": np.int64,
                    "answers": tfds.features.Sequence(
                        {"text": tfds.features.Text(), "start": np.int32}
                    ),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(3), "validation": self._generate_examples(1)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {
                "id": f"q{i}",
                "question": f"Où est la question {i} ?",
                "label": i * 10,
                "answers": {"text": [f"ici {i}", f"là {i}"], "start": [0, 5]},
            }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    KtdTinyQa(data_dir=str(directory)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return directory


def test_load_tfds_by_name(data_dir):
    examples = load_tfds(
        "ktd_tiny_qa",
        "train",
        {"prefix": "question", "target": "answers.text", "answers": "answers.text",
         "id": "id", "label": "label"},
        data_dir=data_dir,
    )
    assert sorted(examples, key=lambda e: e["id"]) == [
        {"prefix": f"Où est la question {i} ?", "target": f"ici {i}",
         "answers": [f"ici {i}", f"là {i}"], "id": f"q{i}", "label": 10 * i}
        for i in range(3)
    ]
    assert len(load_tfds("ktd_tiny_qa:1.0.0", "train[:2]", {"prefix": "question", "target": "id"},
                         data_dir=data_dir)) == 2
    assert len(load_tfds("ktd_tiny_qa", "train", {"prefix": "question", "target": "id"},
                         data_dir=data_dir, max_examples=1)) == 1


def test_load_tfds_transform(data_dir):
    (example,) = load_tfds(
        "ktd_tiny_qa", "validation", {"q": "question", "a": "answers.text"},
        data_dir=data_dir,
        transform=lambda e: {"prefix": "question: " + e["q"], "target": e["a"][-1]},
    )
    assert example == {"prefix": "question: Où est la question 0 ?", "target": "là 0"}


def test_load_tfds_bad_fields(data_dir):
    with pytest.raises(ValueError, match=r"missing \['target'\]"):
        load_tfds("ktd_tiny_qa", "train", {"prefix": "question"}, data_dir=data_dir)
    with pytest.raises(KeyError, match=r"no feature 'answers\.txt'.*'answers'.*\['start', 'text'\]"):
        load_tfds("ktd_tiny_qa", "train", {"prefix": "question", "target": "answers.txt"},
                  data_dir=data_dir)
    with pytest.raises(ValueError, match="'target' must be a string, got int"):
        load_tfds("ktd_tiny_qa", "train", {"prefix": "question", "target": "label"},
                  data_dir=data_dir)
    with pytest.raises(ValueError, match="must be a dict"):
        load_tfds("ktd_tiny_qa", "train", ["question", "id"], data_dir=data_dir)


def test_load_tfds_not_prepared_does_not_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared.*could not find data"):
        load_tfds("ktd_tiny_qa", "train", {"prefix": "question", "target": "id"},
                  data_dir=tmp_path)
