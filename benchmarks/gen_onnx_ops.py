"""Print candidate ``safeload/_onnx_ops.py``: the ONNX operators safeload's converter writes.

Fits every estimator of ``sklearn.utils.all_estimators()`` that skl2onnx has a converter for
(with the recipes of ``tests/test_all_estimators.py``; classifiers on three, two and string
labels, regressors on one and two targets), plus common pipelines (ColumnTransformer with
OneHotEncoder, StandardScaler, SimpleImputer, text columns through TfidfVectorizer and
CountVectorizer, on DataFrames), converts each with ``safeload.onnxconvert.convert_to_onnx``
(the very path of ``save(format="onnx")``: the same skl2onnx options, the same double-then-float
fallback, the graph proven on the sample) under a policy admitting every standard operator, and
records each ``(domain, op_type)`` of the written graph and of all its subgraphs.

    python benchmarks/gen_onnx_ops.py            # the module, each operator with its emitters
    python benchmarks/gen_onnx_ops.py --diff     # only what ONNX_OPS lacks or has extra

A model whose fit and conversion take more than ``--seconds`` (10) is skipped and listed. For
classifiers the graph skl2onnx writes with its default ZipMap is converted too, and the
operators only it uses are listed as a comment: safeload never writes them (it sets
``zipmap=False``), so they stay out. The committed list is reviewed: this script suggests.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safeload._onnx_ops import ONNX_OPS  # noqa: E402
from safeload.onnxconvert import _estimators, convert_to_onnx  # noqa: E402
from safeload.policy import TypePolicy  # noqa: E402
from tests import test_all_estimators as recipes  # noqa: E402


class TooSlow(Exception):
    """The model's fit and conversion ran past the time bound."""


def every_standard_op() -> list[str]:
    """Every operator of ai.onnx and ai.onnx.ml the installed onnx knows (the generator's gate)."""
    import onnx.defs

    names = set()
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx.ml"):
            names.add(f"{schema.domain or 'ai.onnx'}:{schema.name}")
    return sorted(names)


def graph_ops(graph: Any) -> Iterator[str]:
    """``domain:OpType`` of every node of ``graph`` and of every subgraph, at any depth."""
    for node in graph.node:
        yield f"{node.domain or 'ai.onnx'}:{node.op_type}"
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from graph_ops(attr.g)
            for sub in attr.graphs:
                yield from graph_ops(sub)


def model_ops(data: bytes) -> set[str]:
    import onnx

    return set(graph_ops(onnx.ModelProto.FromString(data).graph))


def zipmap_ops(model: Any, sample: Any) -> set[str]:
    """The operators of skl2onnx's default graph (with ZipMap) of a fitted classifier."""
    from skl2onnx import to_onnx

    from safeload.onnxconvert import _input_types

    inputs = [(name, kind) for name, _, kind in _input_types(sample, "double")]
    try:
        return set(graph_ops(to_onnx(model, initial_types=inputs).graph))
    except Exception:  # informative only: the written graph is what counts
        return set()


def _alarm(signum: int, frame: Any) -> None:
    raise TooSlow


def cases(d: Any) -> Iterator[tuple[str, Any, tuple[Any, ...], Any]]:
    """``(name, unfitted model, fit args, sample)`` for every model to convert."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.base import clone, is_classifier, is_regressor

    labels = np.array(["ant", "bee", "cow"])[d.y_cls]
    for case in recipes.build_cases(d):
        est = case.estimator
        inner = _estimators(est)
        if any(type(e) not in sklearn_operator_name_map for e in inner):
            continue
        args = case.fit_args
        sample = case.eval_input
        if not isinstance(sample, np.ndarray) or sample.ndim != 2:
            continue  # text and dict inputs: through the pipelines below
        yield case.name, est, args, sample[:12]
        if is_classifier(est) and len(args) == 2 and args[1] is d.y_cls:
            yield f"{case.name}[binary]", clone(est), (args[0], d.y_bin), sample[:12]
            yield f"{case.name}[str labels]", clone(est), (args[0], labels), sample[:12]
        if is_regressor(est) and len(args) == 2 and args[1] is d.y_reg:
            yield f"{case.name}[2 targets]", clone(est), (args[0], d.Y_reg), sample[:12]
    yield from pipelines()


def pipelines() -> Iterator[tuple[str, Any, tuple[Any, ...], Any]]:
    """Common preprocessing on DataFrames: numbers, categories and text columns."""
    import pandas as pd
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.svm import SVC

    for name, (model, frame, y) in recipes.pandas_cases().items():
        yield f"pandas:{name}", model, (frame, y), frame.iloc[:12]
    rng = np.random.RandomState(0)
    n = 60
    words = ["red", "green", "blue", "cat", "dog", "fish", "tree", "rock"]
    frame = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n),
            "visits": rng.randint(0, 9, n),
            "city": rng.choice(["paris", "oslo", "rome"], n),
            "text": [" ".join(rng.choice(words, size=5)) for _ in range(n)],
        }
    )
    y = rng.randint(0, 3, n)
    y_reg = frame["age"].to_numpy() * 2.0
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    models = {
        "onehot+scaler+LR": ColumnTransformer(
            [
                ("num", numeric, ["age", "visits"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ]
        ),
        "tfidf+LR": ColumnTransformer([("text", TfidfVectorizer(), "text")]),
        "tfidf-bigrams+LR": ColumnTransformer(
            [("text", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), "text")]
        ),
        "count+onehot": ColumnTransformer(
            [("text", CountVectorizer(), "text"), ("cat", OneHotEncoder(), ["city"])]
        ),
        "ordinal+scaler": ColumnTransformer(
            [("cat", OrdinalEncoder(), ["city"]), ("num", StandardScaler(), ["age"])]
        ),
        "imputer-constant": ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="constant", fill_value=0.0), ["age"]),
                (
                    "cat",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                    ["city"],
                ),
            ]
        ),
    }
    tails = {
        "LR": LogisticRegression(max_iter=300),
        "RF": RandomForestClassifier(n_estimators=3, random_state=0),
        "HGB": HistGradientBoostingClassifier(max_iter=5),
        "SVC": SVC(probability=True, random_state=0),
    }
    for pre_name, pre in models.items():
        for tail_name, tail in tails.items():
            model = make_pipeline(clone(pre), clone(tail))
            yield f"pipe:{pre_name}>{tail_name}", model, (frame, y), frame.iloc[:12]
        if pre_name == "count+onehot":
            model = make_pipeline(clone(pre), MultinomialNB())
            yield f"pipe:{pre_name}>MultinomialNB", model, (frame, y), frame.iloc[:12]
    for tail_name, tail in {
        "Ridge": Ridge(),
        "GBR": GradientBoostingRegressor(n_estimators=5),
    }.items():
        model = make_pipeline(models["onehot+scaler+LR"], tail)
        yield f"pipe:onehot+scaler>{tail_name}", model, (frame, y_reg), frame.iloc[:12]
    yield (
        "pipe:array scaler+imputer",
        make_pipeline(StandardScaler(), SimpleImputer()),
        (frame[["age"]].to_numpy(),),
        frame[["age"]].to_numpy()[:12],
    )


def collect(seconds: int) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    """Operators to their emitters (written graphs), ZipMap-only ones, and what was skipped."""
    from sklearn.base import is_classifier

    d = recipes.make_data()
    everything = TypePolicy.default().with_onnx_ops(*every_standard_op())
    emitters: dict[str, list[str]] = defaultdict(list)
    zipmap: dict[str, list[str]] = defaultdict(list)
    skipped: dict[str, str] = {}
    signal.signal(signal.SIGALRM, _alarm)
    for name, model, args, sample in cases(d):
        start = time.perf_counter()
        signal.alarm(seconds)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(*args)
                data, _ = convert_to_onnx(model, sample, name, policy=everything)
                extra = zipmap_ops(model, sample) if is_classifier(model) else set()
        except TooSlow:
            skipped[name] = f"more than {seconds} s"
            continue
        except Exception as exc:
            skipped[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[-240:]}"
            continue
        finally:
            signal.alarm(0)
        ops = model_ops(data)
        for op in ops:
            emitters[op].append(name)
        for op in extra - ops:
            zipmap[op].append(name)
        took = time.perf_counter() - start
        print(f"# {name}: {len(ops)} operators, {took:.2f} s", file=sys.stderr)
    return emitters, zipmap, skipped


def _who(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:4])
    return shown + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", action="store_true", help="only differences with ONNX_OPS")
    parser.add_argument("--seconds", type=int, default=10, help="time bound per model")
    args = parser.parse_args()
    emitters, zipmap, skipped = collect(args.seconds)
    converted = len({n for names in emitters.values() for n in names})
    if args.diff:
        for op in sorted(set(emitters) - ONNX_OPS):
            print(f"+ {op}  # {_who(emitters[op])}")
        for op in sorted(ONNX_OPS - set(emitters)):
            print(f"- {op}")
        return 0
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("scikit-learn", "skl2onnx", "onnx"))
    print(f"# Generated by benchmarks/gen_onnx_ops.py: {converted} models converted ({versions}).")
    print(f"# {len(skipped)} models skipped (no converter for their data, failed, or too slow).")
    print("ONNX_OPS: frozenset[str] = frozenset(")
    print("    {")
    for op in sorted(emitters):
        print(f'        "{op}",  # {len(emitters[op])}: {_who(emitters[op])}')
    print("    }")
    print(")")
    for op in sorted(set(zipmap) - set(emitters)):
        print(f"# only with skl2onnx's default ZipMap (never written by safeload): {op}")
    for name, why in sorted(skipped.items()):
        print(f"# skipped {name}: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
