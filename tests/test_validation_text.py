"""Vectorizers: vocabularies are exact column permutations, n-gram ranges fit the budget."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)

from safeload import ScanLimits
from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from tests.crafted_child import predict_in_child
from tests.validation_cases import edited_copy, passes_both_ways

DOCS = ["the cat sat on the mat", "the dog ran far", "a cat and a dog met"]
RECORDS = [{"city": "Paris", "temp": 12.0}, {"city": "Rome", "wind": 3}]


def restricted_dict() -> DictVectorizer:
    vec = DictVectorizer().fit([{"a": 1, "b": 2, "c": 3}])
    vec.restrict([True, False, True])
    return vec


LEGIT: dict[str, Callable[[], Any]] = {
    "count": lambda: CountVectorizer().fit(DOCS),
    "count_char_wb": lambda: CountVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(DOCS),
    "count_max_features": lambda: CountVectorizer(max_features=4, ngram_range=(1, 2)).fit(DOCS),
    "tfidf": lambda: TfidfVectorizer().fit(DOCS),
    "tfidf_transformer": lambda: TfidfTransformer().fit(CountVectorizer().fit_transform(DOCS)),
    "hashing": lambda: HashingVectorizer(n_features=64, ngram_range=(1, 3)),
    "dict": lambda: DictVectorizer().fit(RECORDS),
    "dict_unsorted": lambda: DictVectorizer(sort=False).fit(RECORDS),
    "dict_restricted": restricted_dict,
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_models_pass(name: str) -> None:
    passes_both_ways(LEGIT[name]())


def edited(name: str, **changes: Any) -> Any:
    return edited_copy(LEGIT[name](), **changes)


def shifted(name: str, by: int) -> Any:
    model = copy.deepcopy(LEGIT[name]())
    model.vocabulary_ = {term: column * by for term, column in model.vocabulary_.items()}
    return model


def tfidf_with_idf(length: int) -> Any:
    model = copy.deepcopy(LEGIT["tfidf"]())
    model._tfidf.idf_ = model._tfidf.idf_[:length]
    return model


CRAFTED: dict[str, tuple[Callable[[], Any], str]] = {
    "count_vocabulary_out_of_range": (lambda: shifted("count", 10**6), "outside [0,"),
    "count_vocabulary_repeated": (lambda: shifted("count", 0), "two entries to one column"),
    "count_vocabulary_negative": (lambda: shifted("count", -1), "outside [0,"),
    "count_vocabulary_float": (
        lambda: edited("count", vocabulary_={"cat": 0.0}),
        "integer column index",
    ),
    "count_vocabulary_huge_int": (
        lambda: edited("count", vocabulary_={"cat": 0, "dog": 2**70}),
        "beyond 64 bits",
    ),
    "count_vocabulary_not_dict": (lambda: edited("count", vocabulary_=["cat"]), "not a dict"),
    "count_ngram_range": (
        lambda: edited("count_char_wb", ngram_range=(1, 10**9)),
        "max_work_per_value",
    ),
    "count_ngram_reversed": (lambda: edited("count", ngram_range=(3, 1)), "min_n <= max_n"),
    "count_ngram_zero": (lambda: edited("count", ngram_range=(0, 2)), "min_n <= max_n"),
    "count_ngram_list": (lambda: edited("count", ngram_range=[1, 2]), "pair"),
    "hashing_ngram_range": (
        lambda: edited("hashing", ngram_range=(1, 10**6)),
        "max_work_per_value",
    ),
    "tfidf_idf_length": (lambda: tfidf_with_idf(3), "_tfidf.idf_"),
    "tfidf_transformer_idf": (
        lambda: edited("tfidf_transformer", n_features_in_=10**4),
        "idf_",
    ),
    "dict_vocabulary_out_of_range": (lambda: shifted("dict", 10**7), "outside [0,"),
    "dict_names_disagree": (
        lambda: edited("dict", feature_names_=["temp", "city=Paris", "city=Rome", "wind"]),
        "feature_names_",
    ),
    "dict_names_short": (lambda: edited("dict", feature_names_=["temp"]), "feature_names_"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_is_refused(name: str) -> None:
    build, fragment = CRAFTED[name]
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(build())
    assert fragment in str(info.value), str(info.value)


def test_budgets_are_the_callers() -> None:
    model = LEGIT["count_char_wb"]()  # n-grams of 2 to 5 characters: 14 copies per position
    validate_model(model, limits=ScanLimits(max_work_per_value=14))
    with pytest.raises(MalformedArtifactError, match="max_work_per_value=13"):
        validate_model(model, limits=ScanLimits(max_work_per_value=13))
    with pytest.raises(MalformedArtifactError, match="max_output_features=3"):
        validate_model(LEGIT["count"](), limits=ScanLimits(max_output_features=3))


@pytest.mark.parametrize(
    ("name", "data"),
    [("count", "['the cat sat dog'] * 200"), ("dict", "[{'city': 'Rome', 'wind': 1}] * 200")],
)
def test_vocabulary_out_of_range_crashes_transform_in_a_child(
    name: str, data: str, tmp_path: Path
) -> None:
    crafted = shifted(name, 10**7)
    fate = predict_in_child(crafted, tmp_path, "transform", data)
    assert fate.startswith("crashed"), fate
    with pytest.raises(MalformedArtifactError, match="vocabulary_"):
        validate_model(crafted)


def test_ngram_range_hangs_transform_in_a_child(tmp_path: Path) -> None:
    crafted = edited("count", analyzer="char", ngram_range=(1, 10**9))
    fate = predict_in_child(crafted, tmp_path, "transform", "['x' * 20000]", timeout=10)
    # All n-grams of a 20,000-character text: the child runs out of time or of its 4 GiB,
    # whichever comes first on the machine of the day.
    assert fate == "hung" or fate.endswith("MemoryError"), fate
    with pytest.raises(MalformedArtifactError, match="ngram_range"):
        validate_model(crafted)
