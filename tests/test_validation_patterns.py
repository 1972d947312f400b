"""Regexes a model runs on the caller's text: catastrophic shapes refused before predict.

``CountVectorizer.token_pattern`` is file-chosen and run by Python's backtracking ``re`` with no
time limit. The hang is shown for real in a child process; the walls let it through (a string
is data), so only validation stands between the file and the hang.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload
from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from safeload.validation.patterns import MAX_COUNT, MAX_LENGTH, pattern_problem

DOCS = ["the cat sat", "a dog ran far", "the dog sat", "a cat ran"] * 3
LABELS = np.array([0, 1, 0, 1] * 3)

HOSTILE = {
    "nested repetition": (r"(a+)+$", "repeats a repetition"),
    "nested in a group": (r"(?:\w*\s?)*x", "repeats a repetition"),
    "atomic group repeated": (r"(?>a+)+b", "repeats a repetition"),
    "alternation repeated": (r"(a|ab)*c", "repeats an alternation"),
    "alternation in lookahead repeated": (r"((?=a)(a|aa))+z", "repeats"),
    "backreference": (r"(\w+)\s\1", "backreference"),
    "conditional backreference": (r"(a)?(?(1)b|c)", "backreference"),
    "three overlapping stars": (r"\w*\w*\w*!", "unbounded repetitions"),
    "huge count": (r"a{100000}", "times"),
    "huge lower bound": (r"a{5000,}", "times"),
    "too long": ("a" * (MAX_LENGTH + 1), "characters long"),
    "unparsable": (r"(unclosed", "can parse"),
    "not a string": (b"\\w+", "not a string"),
}
BENIGN = [
    r"(?u)\b\w\w+\b",  # scikit-learn's default
    r"(?u)\b\w+\b",
    r"\S+",
    r"[a-zA-Z]{2,}",
    r"(?u)\b\w\w+\b|[^\w\s]",
    r"\b\w+(?:'\w+)?\b",
    r"(?u)\b[^\d\W]{3,20}\b",
    r"\w{2," + str(MAX_COUNT) + "}",
]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pattern_is_refused(name: str) -> None:
    pattern, why = HOSTILE[name]
    problem = pattern_problem(pattern)
    assert problem is not None and why in problem
    vectorizer = CountVectorizer().fit(DOCS)
    vectorizer.token_pattern = pattern  # type: ignore[assignment]
    with pytest.raises(MalformedArtifactError, match="token_pattern") as info:
        validate_model(make_pipeline(vectorizer))
    assert "no time limit" in str(info.value) and len(str(info.value)) < 1000


@pytest.mark.parametrize("pattern", BENIGN)
@pytest.mark.parametrize("cls", [CountVectorizer, TfidfVectorizer, HashingVectorizer])
def test_usual_patterns_pass(pattern: str, cls: type) -> None:
    assert pattern_problem(pattern) is None
    validate_model(make_pipeline(cls(token_pattern=pattern).fit(DOCS)))


def test_no_pattern_is_fine() -> None:
    validate_model(CountVectorizer(token_pattern=None, analyzer="char").fit(DOCS))


def test_column_selector_pattern() -> None:
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0], "income": [3.0, 4.0, 5.0]})
    good = ColumnTransformer([("num", StandardScaler(), make_column_selector(pattern="a|i"))])
    validate_model(good.fit(frame))
    bad = ColumnTransformer([("num", StandardScaler(), make_column_selector(pattern=r"(\w+)+$"))])
    bad.transformers[0][2].pattern = r"(\w+)+$"
    with pytest.raises(MalformedArtifactError, match="pattern"):
        validate_model(bad)


_CHILD = textwrap.dedent(
    """
    import sys, joblib
    from safeload import load
    import safeload
    path, keys, guard = sys.argv[1], sys.argv[2], sys.argv[3] == "guard"
    if not guard:  # the defence removed: what a load would do without it
        from safeload.validation import patterns
        patterns.pattern_problem = lambda pattern: None
    try:
        model = load(path, trusted=keys)
    except safeload.SafeloadError as exc:
        print("REFUSED", type(exc).__name__, str(exc)[:300])
        sys.exit(0)
    print("LOADED", flush=True)
    model.predict(["a" * 40 + "!"])
    print("PREDICTED")
    """
)


def test_signed_redos_model_is_refused_and_would_hang_without_the_check(
    tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    """A trusted signer's model with ``(a+)+$`` as token pattern: refused at load.

    Without the check the same load succeeds and predict spins (killed after a timeout).
    """
    model = make_pipeline(CountVectorizer(), LogisticRegression()).fit(DOCS, LABELS)
    model.steps[0][1].token_pattern = r"(a+)+$"
    path = safeload.save(model, tmp_path / "redos", key=key, name="redos", version="1")
    guarded = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(keydir), "guard"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert guarded.stdout.startswith("REFUSED MalformedArtifactError"), guarded.stderr
    assert "token_pattern" in guarded.stdout
    with pytest.raises(subprocess.TimeoutExpired) as hung:
        subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(keydir), "bare"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert b"LOADED" in (hung.value.stdout or b"")
