"""Text and dict vectorizers: vocabularies are column indices, n-gram ranges are loops.

``CountVectorizer`` and ``DictVectorizer`` turn each known term into the column its
``vocabulary_`` names and build a CSR matrix ``len(vocabulary_)`` wide around them without
checking: a vocabulary that is not exactly a permutation of ``0..len-1`` gives column indices
past the matrix, and ``toarray()`` writes out of bounds. ``ngram_range`` sets how many n-gram
strings (each copying ``n`` characters or tokens) every position of every document produces.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, attr, integer
from safeload.validation._budget import flag, guarded, permutation_values, vector, width, work


def _vocabulary(ctx: Context, vocabulary: Any) -> int:
    if not isinstance(vocabulary, dict):
        raise Invalid(f"vocabulary_ is {type(vocabulary).__name__}, not a dict")
    width(ctx, len(vocabulary), "vocabulary_")
    permutation_values(vocabulary.values(), "vocabulary_")
    return len(vocabulary)


def _visit_ngrams(ctx: Context, vec: Any) -> None:
    ngram_range = attr(vec, "ngram_range")
    if not isinstance(ngram_range, tuple) or len(ngram_range) != 2:
        raise Invalid("ngram_range is not a (min_n, max_n) pair")
    low = integer(ngram_range[0], "ngram_range[0]")
    high = integer(ngram_range[1], "ngram_range[1]")
    if not 1 <= low <= high:
        raise Invalid(f"ngram_range ({shown(low)}, {shown(high)}) is not 1 <= min_n <= max_n")
    # Each position yields one n-gram per length, each copying n characters or tokens.
    work(ctx, (low + high) * (high - low + 1) // 2, f"ngram_range ({low}, {shown(high)})")


def _visit_count_vectorizer(ctx: Context, vec: Any) -> None:
    vocabulary = attr(vec, "vocabulary_")
    if vocabulary is None:
        return
    flag(attr(vec, "fixed_vocabulary_"), "fixed_vocabulary_")
    n_terms = _vocabulary(ctx, vocabulary)
    tfidf = attr(vec, "_tfidf")
    idf = attr(tfidf, "idf_") if tfidf is not None else None
    if idf is not None:
        vector(idf, "_tfidf.idf_", n_terms)
        n_in = attr(tfidf, "n_features_in_")
        if n_in is not None and integer(n_in, "_tfidf.n_features_in_") != n_terms:
            raise Invalid(f"_tfidf was fitted on {shown(n_in)} terms, not {n_terms}")


def _visit_tfidf_transformer(ctx: Context, est: Any) -> None:
    idf = attr(est, "idf_")
    n_in = attr(est, "n_features_in_")
    if idf is not None and n_in is not None:
        vector(idf, "idf_", width(ctx, integer(n_in, "n_features_in_"), "n_features_in_"))


def _same(a: Any, b: Any) -> bool:
    """``a == b`` only when it is a plain truth value (an array answer is not equality)."""
    answer = a == b
    return isinstance(answer, (bool, np.bool_)) and bool(answer)


def _visit_dict_vectorizer(ctx: Context, vec: Any) -> None:
    vocabulary = attr(vec, "vocabulary_")
    if vocabulary is None:
        return
    n_terms = _vocabulary(ctx, vocabulary)
    names = attr(vec, "feature_names_")
    if not isinstance(names, list) or len(names) != n_terms:
        raise Invalid(f"feature_names_ is not a list of the {n_terms} vocabulary terms")
    if not all(_same(names[column], term) for term, column in vocabulary.items()):
        raise Invalid("feature_names_ does not name each vocabulary_ term at its column")


CHECKS: Checks = guarded(
    [
        ((("sklearn.feature_extraction.text", "_VectorizerMixin"),), _visit_ngrams),
        ((("sklearn.feature_extraction.text", "CountVectorizer"),), _visit_count_vectorizer),
        ((("sklearn.feature_extraction.text", "TfidfTransformer"),), _visit_tfidf_transformer),
        (
            (("sklearn.feature_extraction._dict_vectorizer", "DictVectorizer"),),
            _visit_dict_vectorizer,
        ),
    ]
)
