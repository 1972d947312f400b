"""Preprocessing: fitted counts that size output rows and loops must agree and fit the budget.

Each crafted model is refused by ``validate_model``; the ``why`` tests show in a throwaway
child (4 GiB address space, timeout) that the same model crashes or hangs plain scikit-learn.
"""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    LabelBinarizer,
    MaxAbsScaler,
    MinMaxScaler,
    MultiLabelBinarizer,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)

import safeload
from safeload import ScanLimits
from safeload.errors import MalformedArtifactError
from safeload.saving import write_signed_artifact
from safeload.validation import validate_model
from tests.crafted_child import predict_in_child
from tests.validation_cases import edited_copy, passes_both_ways

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
XC = RNG.integers(0, 6, size=(60, 2)).astype(float)
XC[0, 0] = np.nan
XS = np.array([["a", "b"], ["b", "c"], ["a", "a"], ["c", "b"], ["d", "b"]] * 6, dtype=object)
XS[0, 1] = None
Y = RNG.integers(0, 3, 60)
DATES = np.array(["2020-01-01", "2021-06-01", "NaT", "2020-01-01"], dtype="datetime64[D]")[:, None]


def refused(obj: object, *fragments: str, limits: ScanLimits | None = None) -> str:
    """Assert validate_model refuses obj, with every fragment in the message."""
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(obj, limits=limits)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def fitted(est: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args)


def legit_models() -> dict[str, Callable[[], Any]]:
    multilabel_used = MultiLabelBinarizer().fit([["x", "y"], ["z"]])
    multilabel_used.transform([["x"]])  # fills _cached_dict, which is pickled
    return {
        "poly3": lambda: fitted(PolynomialFeatures(3), X),
        "poly_interaction": lambda: fitted(
            PolynomialFeatures((2, 3), interaction_only=True, include_bias=False), X
        ),
        "poly_degree_0": lambda: fitted(PolynomialFeatures((0, 0)), X),
        "poly_interaction_beyond_features": lambda: fitted(
            PolynomialFeatures(8, interaction_only=True), X
        ),
        "spline": lambda: fitted(SplineTransformer(), X),
        "spline_periodic": lambda: fitted(
            SplineTransformer(include_bias=False, extrapolation="periodic"), X
        ),
        "one_hot": lambda: fitted(OneHotEncoder(), XC),
        "one_hot_drop_first": lambda: fitted(OneHotEncoder(drop="first"), XC),
        "one_hot_infrequent_if_binary": lambda: fitted(
            OneHotEncoder(drop="if_binary", min_frequency=10), XC
        ),
        "one_hot_objects_infrequent": lambda: fitted(
            OneHotEncoder(max_categories=3, handle_unknown="infrequent_if_exist"), XS
        ),
        "one_hot_drop_values": lambda: fitted(OneHotEncoder(drop=["a", "b"]), XS[1:]),
        "one_hot_dates_with_nat": lambda: fitted(OneHotEncoder(), DATES),
        "ordinal": lambda: fitted(OrdinalEncoder(), XC),
        "ordinal_infrequent": lambda: fitted(OrdinalEncoder(min_frequency=8), XC),
        "ordinal_missing_infrequent": lambda: fitted(
            OrdinalEncoder(max_categories=2, encoded_missing_value=-1), XS
        ),
        "target_multiclass": lambda: fitted(TargetEncoder(), XC, Y),
        "target_continuous": lambda: fitted(TargetEncoder(target_type="continuous"), XC, X[:, 0]),
        "target_objects": lambda: fitted(TargetEncoder(), XS, Y[:30] % 2),
        "kbins_onehot": lambda: fitted(KBinsDiscretizer(n_bins=4), X),
        "kbins_ordinal": lambda: fitted(
            KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform"), X
        ),
        "standard": lambda: fitted(StandardScaler(), X),
        "standard_nothing": lambda: fitted(StandardScaler(with_mean=False, with_std=False), X),
        "minmax": lambda: fitted(MinMaxScaler(), X),
        "maxabs": lambda: fitted(MaxAbsScaler(), X),
        "robust": lambda: fitted(RobustScaler(with_centering=False), X),
        "quantile": lambda: fitted(QuantileTransformer(n_quantiles=20), X),
        "power": lambda: fitted(PowerTransformer(), X),
        "normalizer": lambda: fitted(Normalizer(), X),
        "label_binarizer": lambda: fitted(LabelBinarizer(), Y),
        "multilabel": lambda: fitted(MultiLabelBinarizer(), [[1, 2], [3]]),
        "multilabel_used": lambda: multilabel_used,
    }


LEGIT = legit_models()


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_models_pass(name: str) -> None:
    model = LEGIT[name]()
    validate_model(model)
    passes_both_ways(make_pipeline(model))


# ---- crafted: each edit makes a fitted count disagree, or leave the budget -------------------


def edited(name: str, **changes: Any) -> Any:
    return edited_copy(LEGIT[name](), **changes)


def objects(*items: Any) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


CRAFTED: dict[str, tuple[Callable[[], Any], str]] = {
    "poly_degree_loop": (
        lambda: edited("poly_interaction_beyond_features", _max_degree=10**12),
        "max_work_per_value",
    ),
    "poly_huge_width": (
        lambda: edited("poly3", _max_degree=1000, _n_out_full=10**9),
        "max_output_features",
    ),
    "poly_output_count": (lambda: edited("poly3", n_output_features_=10**6), "n_output_features_"),
    "poly_full_count_huge": (lambda: edited("poly3", _n_out_full=10**12), "_n_out_full"),
    "poly_full_count": (lambda: edited("poly3", _n_out_full=3), "_n_out_full"),
    "poly_degrees_reversed": (lambda: edited("poly3", _min_degree=4), "0 <= min <= max"),
    "poly_degree_not_int": (lambda: edited("poly3", _max_degree=3.0), "not an integer"),
    "poly_flag_not_bool": (lambda: edited("poly3", interaction_only="yes"), "not a bool"),
    "poly_no_inputs": (lambda: edited("poly3", n_features_in_=0), "is not a positive count"),
    "spline_out_count": (lambda: edited("spline", n_features_out_=10**12), "n_features_out_"),
    "spline_count": (lambda: edited("spline", bsplines_=LEGIT["spline"]().bsplines_[:2]), "list"),
    "one_hot_outs": (lambda: edited("one_hot", _n_features_outs=[1, 1]), "_n_features_outs"),
    "one_hot_outs_negative": (
        lambda: edited("one_hot", _n_features_outs=[-(10**9), 10**9 + 13]),
        "_n_features_outs",
    ),
    "one_hot_categories_unsorted": (
        lambda: edited("one_hot", categories_=[np.array([3.0, 1.0, 2.0]), np.arange(6.0)]),
        "sorted",
    ),
    "one_hot_nan_not_last": (
        lambda: edited("one_hot", categories_=[np.array([np.nan, 1.0]), np.arange(6.0)]),
        "NaN",
    ),
    "one_hot_categories_count": (
        lambda: edited("one_hot", categories_=[np.arange(6.0)]),
        "n_features_in_=2",
    ),
    "one_hot_empty_category": (
        lambda: edited("one_hot", categories_=[np.arange(6.0), np.array([])]),
        "empty",
    ),
    "one_hot_drop_out_of_range": (
        lambda: edited(
            "one_hot_drop_first", _drop_idx_after_grouping=np.array([0, 99], dtype=object)
        ),
        "outside",
    ),
    "one_hot_infrequent_index": (
        lambda: edited("one_hot_objects_infrequent", _infrequent_indices=[np.array([10**6]), None]),
        "_infrequent_indices[0]",
    ),
    "one_hot_infrequent_mapping": (
        lambda: edited(
            "one_hot_objects_infrequent",
            _default_to_infrequent_mappings=[np.array([0, 1, 2, 7]), None],
        ),
        "_default_to_infrequent_mappings[0]",
    ),
    "one_hot_too_wide": (lambda: LEGIT["one_hot"](), "max_output_features=5"),
    "ordinal_missing_index": (
        lambda: edited("ordinal", _missing_indices={0: 10**6}),
        "_missing_indices",
    ),
    "target_encodings_short": (
        lambda: edited("target_continuous", encodings_=[np.zeros(1), np.zeros(6)]),
        "encodings_[0]",
    ),
    "kbins_edges": (
        lambda: edited("kbins_ordinal", n_bins_=np.array([4, 4, 10**9])),
        "bin_edges_[2]",
    ),
    "scaler_width": (lambda: edited("standard", scale_=np.ones(2)), "scale_"),
    "quantiles_shape": (lambda: edited("quantile", references_=np.zeros(3)), "references_"),
    "multilabel_cache": (
        lambda: edited("multilabel_used", _cached_dict={"x": 0, "y": 10**7, "z": 2}),
        "_cached_dict",
    ),
    "multilabel_cache_swapped": (
        lambda: edited("multilabel_used", _cached_dict={"x": 1, "y": 0, "z": 2}),
        "_cached_dict",
    ),
    "multilabel_cache_key_unhashable": (
        lambda: edited("multilabel_used", classes_=objects([1], [2], [3])),
        "not what fit builds (TypeError",
    ),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_is_refused(name: str) -> None:
    build, fragment = CRAFTED[name]
    limits = ScanLimits(max_output_features=5) if name == "one_hot_too_wide" else None
    refused(build(), fragment, limits=limits)


def test_budget_is_the_callers() -> None:
    """The same legit model passes under the defaults and is refused under a lower budget."""
    wide = fitted(PolynomialFeatures(4), RNG.normal(size=(5, 10)))  # 1001 columns
    validate_model(wide)
    refused(wide, "max_output_features=1000", limits=ScanLimits(max_output_features=1000))
    deep = fitted(PolynomialFeatures(2000, interaction_only=True), X)
    refused(deep, "max_work_per_value=1024")
    validate_model(deep, limits=ScanLimits(max_work_per_value=2000))


# ---- why: the crafted models crash or hang plain scikit-learn --------------------------------


def test_one_hot_counts_crash_transform_in_a_child(tmp_path: Path) -> None:
    crafted = edited("one_hot", _n_features_outs=[-(10**9), 10**9 + 13], sparse_output=False)
    fate = predict_in_child(crafted, tmp_path, "transform", "np.array([[5.0, 5.0]] * 50)")
    assert fate.startswith("crashed"), fate
    refused(crafted, "_n_features_outs")


def test_polynomial_degree_hangs_transform_in_a_child(tmp_path: Path) -> None:
    crafted = edited("poly_interaction_beyond_features", _max_degree=10**12)
    fate = predict_in_child(crafted, tmp_path, "transform", "np.ones((2, 3))", timeout=10)
    assert fate == "hung", fate
    refused(crafted, "_max_degree")


def test_multilabel_cache_crashes_transform_in_a_child(tmp_path: Path) -> None:
    crafted = edited("multilabel_used", _cached_dict={"x": 0, "y": 10**7, "z": 2})
    fate = predict_in_child(crafted, tmp_path, "transform", "[['x', 'y', 'z']] * 100")
    assert fate.startswith("crashed"), fate
    refused(crafted, "_cached_dict")


# ---- end to end: a signed crafted encoder with sample predictions ----------------------------


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_signed_crafted_encoder_with_a_sample_is_refused_by_load(fmt: str, tmp_path: Path) -> None:
    """load must validate before its contract check runs transform on the saved sample."""
    legit = fitted(OneHotEncoder(sparse_output=False), XC[1:])
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    saved = safeload.save(
        legit,
        tmp_path / "legit" / "m" / "1",
        key=key,
        format=fmt,
        name="m",
        version="1",
        sample=np.array([[5.0, 5.0]] * 20),
    )
    crafted = copy.deepcopy(legit)
    crafted._n_features_outs = [-(10**9), 10**9 + 12]
    if fmt == "skops":
        import skops.io

        model_bytes = skops.io.dumps(crafted)
    else:
        buffer = io.BytesIO()
        joblib.dump(crafted, buffer)
        model_bytes = buffer.getvalue()
    target = write_signed_artifact(
        tmp_path / "m" / "1",
        {
            f"model.{fmt}": model_bytes,
            "safeload.json": (saved / "safeload.json").read_bytes(),
        },
        key=key,
        subject_name="m/1",
    )
    code = textwrap.dedent(f"""
        import safeload
        try:
            safeload.load({str(target)!r}, trusted={str(tmp_path / "keys")!r})
        except safeload.MalformedArtifactError as exc:
            print("refused:", exc)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert b"refused:" in proc.stdout and b"_n_features_outs" in proc.stdout, proc.stdout


def test_load_holds_the_model_to_the_callers_budget(tmp_path: Path) -> None:
    model = fitted(PolynomialFeatures(3), X)  # 20 output columns
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    target = safeload.save(model, tmp_path / "m" / "1", key=key, sample=X[:3])
    keys = tmp_path / "keys"
    safeload.load(target, trusted=keys)
    tight = safeload.LoadOptions(scan_limits=ScanLimits(max_output_features=19))
    with pytest.raises(MalformedArtifactError, match="max_output_features=19"):
        safeload.load(target, trusted=keys, options=tight)


def test_convert_validates_before_it_predicts(tmp_path: Path) -> None:
    """convert records predictions on the joblib model: only once validation passed."""
    crafted = copy.deepcopy(fitted(OneHotEncoder(sparse_output=False), XC[1:]))
    crafted._n_features_outs = [-(10**9), 10**9 + 12]
    source = tmp_path / "crafted.joblib"
    joblib.dump(crafted, source)
    code = textwrap.dedent(f"""
        import numpy as np, safeload
        try:
            safeload.convert({str(source)!r}, {str(tmp_path / "out" / "1")!r},
                             key=safeload.generate_key(), sample=np.array([[5.0, 5.0]] * 20))
        except safeload.MalformedArtifactError as exc:
            print("refused:", exc)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert b"refused:" in proc.stdout and b"_n_features_outs" in proc.stdout, proc.stdout
