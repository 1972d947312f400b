r"""Regular expressions a model applies to the caller's data: bounded by their shape.

A vectorizer's ``token_pattern`` (and a ``make_column_selector``'s ``pattern``) is a string the
file chose, compiled and run by Python's backtracking ``re`` on every document at transform
time, with no time limit. ``(a+)+$`` on a long run of ``a`` backtracks exponentially: a
signed model with such a pattern loads cleanly and hangs ``predict``. The shapes that
backtrack without bound are known, and refused by principle, on the parsed pattern:

* a repetition inside a repetition (star height above one: ``(a+)+``, ``(\w*\s?)*``);
* an alternation inside a repetition (``(a|a)*``, ``(\w|\d)+``);
* backreferences (``(a)\1``: matching them is NP-hard in general);
* more than :data:`MAX_UNBOUNDED` unbounded repetitions in the whole pattern (each adjacent
  overlapping one multiplies the work per start position by the length of the text);
* counted repetitions above :data:`MAX_COUNT` (``a{100000}`` compiles to that many steps),
  patterns longer than :data:`MAX_LENGTH` characters, and anything ``re`` cannot parse.

What is left matches in time polynomial of degree at most ``MAX_UNBOUNDED + 1`` in the length
of a document: scikit-learn's default ``(?u)\b\w\w+\b`` and the usual custom token patterns
(``\S+``, ``[a-zA-Z]{2,}``, ``(?u)\b\w+\b``, a top-level alternation of those) pass.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, attr

# The parser ``re`` itself uses (``re._parser`` since 3.11, ``sre_parse`` before): the pattern is
# judged exactly as it will be compiled.
_NEW = sys.version_info >= (3, 11)
sre_parse: Any = importlib.import_module("re._parser" if _NEW else "sre_parse")
sre_constants: Any = importlib.import_module("re._constants" if _NEW else "sre_constants")

#: Longest pattern accepted, in characters.
MAX_LENGTH = 256
#: Unbounded repetitions (``*``, ``+``, ``{n,}``) in one pattern.
MAX_UNBOUNDED = 2
#: Largest bound of a counted repetition (``{m,n}``).
MAX_COUNT = 1000

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_REPEATS |= {getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT)}
_BACKREFS = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS}
_BACKREFS |= {getattr(sre_constants, "GROUPREF_IGNORE", sre_constants.GROUPREF)}


def pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` could backtrack without bound (or cannot be judged); None if it cannot."""
    if type(pattern) is not str:
        return f"is a {type(pattern).__name__}, not a string"
    if len(pattern) > MAX_LENGTH:
        return f"is {len(pattern)} characters long, more than {MAX_LENGTH}"
    try:
        parsed = sre_parse.parse(pattern, 0)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return f"is not a regular expression Python can parse ({shown(str(exc))})"
    unbounded = [0]
    problem = _walk(parsed, inside=False, unbounded=unbounded)
    if problem is None and unbounded[0] > MAX_UNBOUNDED:
        problem = f"has {unbounded[0]} unbounded repetitions, more than {MAX_UNBOUNDED}"
    return problem


def _walk(items: Any, *, inside: bool, unbounded: list[int]) -> str | None:
    for op, av in items:
        found: str | None = None
        if op in _REPEATS:
            low, high, sub = av
            endless = high is sre_constants.MAXREPEAT or high == sre_constants.MAXREPEAT
            unbounded[0] += endless
            count = low if endless else max(low, high)
            if count > MAX_COUNT:
                return f"repeats a part {count} times, more than {MAX_COUNT}"
            repeats = high is sre_constants.MAXREPEAT or high > 1
            if inside and repeats:
                return "repeats a repetition (nested quantifiers backtrack exponentially)"
            found = _walk(sub, inside=inside or repeats, unbounded=unbounded)
        elif op is sre_constants.BRANCH:
            if inside:
                return "repeats an alternation (overlapping branches backtrack exponentially)"
            for branch in av[1]:
                found = found or _walk(branch, inside=inside, unbounded=unbounded)
        elif op in _BACKREFS:
            return "uses a backreference"
        elif op is sre_constants.SUBPATTERN:
            found = _walk(av[-1], inside=inside, unbounded=unbounded)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found = _walk(av[1], inside=inside, unbounded=unbounded)
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            found = _walk(av, inside=inside, unbounded=unbounded)
        if found is not None:
            return found
    return None


def _check(obj: Any, field: str) -> None:
    pattern = attr(obj, field)
    if pattern is None:
        return
    problem = pattern_problem(pattern)
    if problem is not None:
        raise Invalid(
            f"{field} {shown(pattern)} {problem}; it would run on every document at predict "
            "time with no time limit",
            field,
        )


def _visit_vectorizer(ctx: Context, vectorizer: Any) -> None:
    _check(vectorizer, "token_pattern")


def _visit_selector(ctx: Context, selector: Any) -> None:
    _check(selector, "pattern")


CHECKS: Checks = [
    ((("sklearn.feature_extraction.text", "_VectorizerMixin"),), _visit_vectorizer),
    ((("sklearn.compose._column_transformer", "make_column_selector"),), _visit_selector),
]
