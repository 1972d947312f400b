"""The opt-in packs (LightGBM, XGBoost, CatBoost) end to end, with the real libraries.

Each pack: a real small model saved, loaded through the whole gate with the pack, predicting
exactly the same; refused without the pack (with advice naming it); and attacks through the
pack's names, signed with a test key, so that only the type gate, the unpickler or the
booster check can refuse. Those that can crash native code run in a child process.
"""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload
from safeload import TypePolicy, _unpickle
from safeload.errors import MalformedArtifactError, PolicyError, UntrustedTypeError
from safeload.policyfile import parse_policy
from safeload.typegate.ubjson import read_ubjson
from tests.ubjson_writer import write_ubjson

lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")
catboost = pytest.importorskip("catboost")

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y_BIN = (X[:, 0] > 0).astype(int)
Y_MULTI = np.digitize(X[:, 1], [-0.5, 0.5])


def _fit(pack: str, y: np.ndarray) -> Any:
    if pack == "lightgbm":
        est: Any = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1)
    elif pack == "xgboost":
        est = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1)
    else:
        est = catboost.CatBoostClassifier(
            iterations=3, depth=2, verbose=0, allow_writing_files=False, thread_count=1
        )
    return make_pipeline(StandardScaler(), est).fit(X, y)


def _save(model: Any, path: Path, key: safeload.SigningKey, pack: str) -> Path:
    policy = TypePolicy.default().with_packs(pack)
    return Path(safeload.save(model, path, key=key, policy=policy))


@pytest.mark.parametrize("pack", ["lightgbm", "xgboost", "catboost"])
@pytest.mark.parametrize("y", [Y_BIN, Y_MULTI], ids=["binary", "multiclass"])
def test_a_pack_model_saves_and_loads_identically(
    pack: str, y: np.ndarray, tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    model = _fit(pack, y)
    path = _save(model, tmp_path / "m", key, pack)
    loaded = safeload.load(path, trusted=keydir, policy=TypePolicy.default().with_packs(pack))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize(
    ("pack", "est"),
    [
        ("lightgbm", lambda: lightgbm.LGBMRegressor(n_estimators=3, verbose=-1)),
        ("xgboost", lambda: xgboost.XGBRegressor(n_estimators=3, n_jobs=1)),
        (
            "catboost",
            lambda: catboost.CatBoostRegressor(
                iterations=3, verbose=0, thread_count=1, allow_writing_files=False
            ),
        ),
    ],
)
def test_a_pack_regressor_loads_identically(
    pack: str, est: Any, tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    model = est().fit(X, X[:, 0] * 2)
    path = _save(model, tmp_path / "m", key, pack)
    loaded = safeload.load(path, trusted=keydir, policy=TypePolicy.default().with_packs(pack))
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_lightgbm_evaluation_results_load(
    tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    """An eval_set fills best_score_, a defaultdict(OrderedDict) with items (SETITEMS on it)."""
    model = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(
        X, Y_BIN, eval_X=X, eval_y=Y_BIN
    )
    path = _save(model, tmp_path / "m", key, "lightgbm")
    loaded = safeload.load(path, trusted=keydir, policy=TypePolicy.default().with_packs("lightgbm"))
    assert loaded.best_score_ == model.best_score_
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("pack", ["lightgbm", "xgboost", "catboost"])
def test_without_the_pack_the_load_is_refused_with_advice(
    pack: str, tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    path = _save(_fit(pack, Y_BIN), tmp_path / "m", key, pack)
    with pytest.raises(UntrustedTypeError) as caught:
        safeload.load(path, trusted=keydir)
    assert f"--pack {pack}" in str(caught.value)
    assert f"with_packs({pack!r})" in str(caught.value)
    with pytest.raises(UntrustedTypeError) as other:  # another pack is not this one
        others = [p for p in TypePolicy.packs() if p != pack]
        safeload.load(path, trusted=keydir, policy=TypePolicy.default().with_packs(*others))
    assert "names" in str(other.value)


def test_advice_only_when_the_names_are_exactly_a_packs() -> None:
    from safeload.errors import untrusted_types_message

    names = ["lightgbm.sklearn.LGBMClassifier", "lightgbm.basic.Booster"]
    assert "--pack lightgbm" in untrusted_types_message(names, "X")
    assert "--pack" not in untrusted_types_message([*names, "os.system"], "X")


def test_the_default_policy_trusts_no_pack_name() -> None:
    default = TypePolicy.default()
    from safeload._packs import PACKS

    for names in PACKS.values():
        assert not any(default.allows(*n.split(":")) for n in names if "boost" in n or "lgb" in n)
    assert not default.allows("lightgbm.basic", "Booster")
    assert not default.allows("builtins", "bytearray")


def test_an_unknown_pack_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="catboost.*lightgbm.*xgboost"):
        TypePolicy.default().with_packs("lgbm")


def test_packs_in_a_policy_file(tmp_path: Path) -> None:
    entries = parse_policy('packs = ["xgboost"]\n')
    assert entries.packs == ("xgboost",)
    file = tmp_path / "policy.toml"
    file.write_text('packs = ["xgboost"]\n')
    policy = TypePolicy.from_file(file)
    assert policy.call_rule("xgboost.core", "Booster") == "new"
    assert policy.call_rule("builtins", "bytearray") == "bytearray"
    assert not policy.allows("lightgbm.basic", "Booster")
    for bad in ('packs = ["nope"]\n', 'packs = "xgboost"\n', 'packs = ["xgboost", "xgboost"]\n'):
        with pytest.raises(safeload.errors.PolicyFileError, match="packs"):
            parse_policy(bad)


def test_cli_pack_option(tmp_path: Path, key: safeload.SigningKey, keydir: Path) -> None:
    from safeload._cli import main

    path = _save(_fit("lightgbm", Y_BIN), tmp_path / "m", key, "lightgbm")
    assert main(["verify", str(path), "--trusted", str(keydir)]) == 1
    assert main(["verify", str(path), "--trusted", str(keydir), "--pack", "lightgbm"]) == 0
    assert main(["verify", str(path), "--trusted", str(keydir), "--pack", "nope"]) == 2


@pytest.mark.parametrize("pack", ["lightgbm", "xgboost", "catboost"])
def test_skops_files_of_a_pack_are_refused_at_save(
    pack: str, tmp_path: Path, key: safeload.SigningKey
) -> None:
    policy = TypePolicy.default().with_packs(pack)
    with pytest.raises(MalformedArtifactError, match="format='joblib'"):
        safeload.save(_fit(pack, Y_BIN), tmp_path / "m", key=key, policy=policy, format="skops")
    assert not (tmp_path / "m").exists()


# --- attacks through the pack's names ---------------------------------------------------------


def _crafted(
    pack: str,
    edit: Any,
    tmp_path: Path,
    key: safeload.SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A signed artifact whose booster state is ``edit(genuine state)``, not what the library
    writes: the library's own ``__getstate__`` is wrapped while safeload saves it."""
    if pack == "lightgbm":
        cls: Any = lightgbm.basic.Booster
    elif pack == "xgboost":
        cls = xgboost.core.Booster
    else:
        cls = catboost.CatBoostClassifier
    genuine = cls.__getstate__
    model = _fit(pack, Y_BIN)
    monkeypatch.setattr(cls, "__getstate__", lambda self: edit(genuine(self)))
    try:
        return _save(model, tmp_path / "m", key, pack)
    finally:
        monkeypatch.setattr(cls, "__getstate__", genuine)


def _load_in_child(path: Path, keydir: Path, pack: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import resource, numpy as np, safeload
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        model = safeload.load({str(path)!r}, trusted={str(keydir)!r},
                              policy=safeload.TypePolicy.default().with_packs({pack!r}))
        print(model.predict(np.zeros((3, 4))))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )


def _resized(text: str) -> str:
    """The LightGBM text with ``tree_sizes`` made right again, as an attacker would."""
    start, end = text.index("Tree=0"), text.index("end of trees")
    blocks = re.split(r"(?=Tree=\d+\n)", text[start:end])[1:]
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    return re.sub(r"tree_sizes=[0-9 ]+", f"tree_sizes={sizes}", text, count=1)


def _lgb(edit_text: Any) -> Any:
    def edit(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "_handle": edit_text(state["_handle"])}

    return edit


def _token(key: str, index: int, value: str, tree: int = 1) -> Any:
    """Tree ``tree``'s ``key`` line with its ``index``-th value replaced (sizes made right)."""

    def edit(text: str) -> str:
        head, _, rest = text.partition(f"Tree={tree}\n")
        line = re.search(rf"^{key}=(.*)$", rest, flags=re.M)
        assert line is not None
        values = line.group(1).split(" ")
        values[index] = value
        rest = rest[: line.start(1)] + " ".join(values) + rest[line.end(1) :]
        return _resized(f"{head}Tree={tree}\n{rest}")

    return edit


def _categorical(text: str) -> str:
    """Tree 1's first split made categorical, its category index past ``num_cat`` (0)."""
    return _token("threshold", 0, "70000")(_token("decision_type", 0, "3")(text))


_MILLION_CLASSES = "num_class=1000000\nnum_tree_per_iteration=1000000\n"
# Tree 1 of the fitted model has 3 leaves: left_child=1 -1, right_child=-2 -3, 2 splits.
LIGHTGBM_ATTACKS = {
    # each crashes or hangs LightGBM 4.7.0 when the check is removed (docs/threat-model.md)
    "left_child_out_of_range": _lgb(_token("left_child", 1, "-200000")),
    "child_points_back_up": _lgb(_token("left_child", 1, "0")),
    "split_feature_past_input": _lgb(_token("split_feature", 1, "900000")),
    "categorical_index_past_num_cat": _lgb(_categorical),
    "num_leaves_the_arrays_lack": _lgb(_token("num_leaves", 0, "2000000000")),
    "tree_count_past_the_trees": _lgb(
        lambda t: re.sub(r"num_class=1\nnum_tree_per_iteration=1\n", _MILLION_CLASSES, t)
    ),
    "tree_sizes_past_the_text": _lgb(
        lambda t: re.sub(r"tree_sizes=([0-9 ]+)", r"tree_sizes=\1" + " 400" * 100000, t)
    ),
    "truncated_text": _lgb(lambda t: t[: len(t) // 3]),
    "garbage_text": _lgb(lambda t: "tree\nversion=v4\n\x00\xff" * 3),
    "other_key_parsed_instead": lambda s: {**s, "handle": s["_handle"]},
}


def _refused_in_child(
    library: str,
    craft: Any,
    refused_class: str,
    tmp_path: Path,
    key: safeload.SigningKey,
    keydir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crafted model, signed and loaded in a child: refused by the booster check, exit 1."""
    path = _crafted(library, craft, tmp_path, key, monkeypatch)
    done = _load_in_child(path, keydir, library)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "MalformedArtifactError" in done.stderr
    assert f"BUILD restores a {refused_class}" in done.stderr


@pytest.mark.parametrize("attack", sorted(LIGHTGBM_ATTACKS))
def test_a_crafted_lightgbm_booster_is_refused_cleanly(
    attack: str,
    tmp_path: Path,
    key: safeload.SigningKey,
    keydir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _refused_in_child(
        "lightgbm",
        LIGHTGBM_ATTACKS[attack],
        "lightgbm.basic.Booster",
        tmp_path,
        key,
        keydir,
        monkeypatch,
    )


def test_the_lightgbm_attack_edits_are_what_they_say() -> None:
    """Tree 1 has the shape the edits assume, and an unedited text passes the check."""
    from safeload.typegate.lightgbm_text import check_lightgbm_text

    text = _fit("lightgbm", Y_BIN)[-1].booster_.model_to_string()
    assert "Tree=1\nnum_leaves=3\n" in text
    assert "\nleft_child=1 -1\nright_child=-2 -3\n" in text
    assert _resized(text) == text
    check_lightgbm_text(text)


def _xgb(edit_model: Any) -> Any:
    def edit(state: dict[str, Any]) -> dict[str, Any]:
        document = copy.deepcopy(read_ubjson(bytes(state["handle"])))
        tree = document["Model"]["learner"]["gradient_booster"]["model"]["trees"][0]
        for name, value in tree.items():
            if isinstance(value, np.ndarray):
                tree[name] = value.copy()
        edit_model(document, tree)
        return {**state, "handle": bytearray(write_ubjson(document))}

    return edit


def _huge_length(state: dict[str, Any]) -> dict[str, Any]:
    data = bytes(state["handle"])
    marker = b"left_children[$l#L"
    at = data.index(marker) + len(marker)
    forged = data[:at] + (1 << 40).to_bytes(8, "big") + data[at + 8 :]
    return {**state, "handle": bytearray(forged)}


XGBOOST_ATTACKS = {
    "left_child_out_of_range": _xgb(lambda d, t: t["left_children"].__setitem__(0, 100000)),
    "split_index_out_of_range": _xgb(lambda d, t: t["split_indices"].__setitem__(0, 10**6)),
    "child_points_back_up": _xgb(lambda d, t: t["left_children"].__setitem__(1, 0)),
    "wrong_array_length": _xgb(
        lambda d, t: t.__setitem__("split_conditions", t["sum_hessian"][:1])
    ),
    "config_disagrees_with_model": _xgb(
        lambda d, t: d["Config"]["learner"]["gradient_booster"]["gbtree_model_param"].__setitem__(
            "num_trees", "5"
        )
    ),
    "huge_declared_length": _huge_length,
    "garbage_bytes": lambda s: {**s, "handle": bytearray(b"{" + b"\xff" * 100)},
    "bytes_not_bytearray": lambda s: {**s, "handle": bytes(s["handle"])},
}


@pytest.mark.parametrize("attack", sorted(XGBOOST_ATTACKS))
def test_a_crafted_xgboost_booster_is_refused_cleanly(
    attack: str,
    tmp_path: Path,
    key: safeload.SigningKey,
    keydir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _refused_in_child(
        "xgboost",
        XGBOOST_ATTACKS[attack],
        "xgboost.core.Booster",
        tmp_path,
        key,
        keydir,
        monkeypatch,
    )


CATBOOST_ATTACKS = {
    "garbage_bytes": lambda s: {**s, "__model": b"\xde\xad" * 500},
    "core_past_the_end": lambda s: {
        **s,
        "__model": s["__model"][:4] + b"\xff\xff\xff\x7f" + s["__model"][8:],
    },
    "text_not_bytes": lambda s: {**s, "__model": "CBM1"},
}


@pytest.mark.parametrize("attack", sorted(CATBOOST_ATTACKS))
def test_a_crafted_catboost_model_is_refused_before_catboost_reads_it(
    attack: str,
    tmp_path: Path,
    key: safeload.SigningKey,
    keydir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _refused_in_child(
        "catboost",
        CATBOOST_ATTACKS[attack],
        "catboost.core.CatBoostClassifier",
        tmp_path,
        key,
        keydir,
        monkeypatch,
    )


def test_a_booster_over_the_size_limit_is_refused(
    tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    path = _save(_fit("lightgbm", Y_BIN), tmp_path / "m", key, "lightgbm")
    limits = safeload.ScanLimits(max_booster_bytes=1000)
    with pytest.raises(MalformedArtifactError, match="max_booster_bytes"):
        safeload.load(
            path,
            trusted=keydir,
            policy=TypePolicy.default().with_packs("lightgbm"),
            scan_limits=limits,
        )


# --- call rules of the pack's names, in both walls --------------------------------------------


def _reduce(module: str, name: str, args: bytes) -> bytes:
    """Protocol 2: GLOBAL module name, a tuple of ``args`` (already pickled), REDUCE."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(" + args + b"tR."


CALL_ATTACKS = {
    "booster_called_with_arguments": _reduce("lightgbm.basic", "Booster", b"X\x03\x00\x00\x00abc"),
    "xgboost_booster_by_reduce": _reduce("xgboost.core", "Booster", b""),
    "bytearray_of_a_size": _reduce("builtins", "bytearray", b"J\x00\x00\x00\x40"),
    "bytearray_with_a_codec": _reduce(
        "builtins", "bytearray", b"X\x01\x00\x00\x00aX\x04\x00\x00\x00utf8"
    ),
    "defaultdict_of_a_function": b"\x80\x02ccollections\ndefaultdict\n(cnumpy\nlog1p\ntR.",
    "estimator_by_reduce": _reduce("catboost.core", "CatBoostClassifier", b""),
}
PACK_POLICY = TypePolicy.default().with_packs("lightgbm", "xgboost", "catboost")


@pytest.mark.parametrize("attack", sorted(CALL_ATTACKS))
def test_a_pack_name_called_in_another_form_is_refused_by_both_walls(attack: str) -> None:
    data = CALL_ATTACKS[attack]
    report = safeload.scan_bytes(data, policy=PACK_POLICY)
    assert not report.safe
    with pytest.raises((MalformedArtifactError, UntrustedTypeError)):
        _unpickle.unpickle_verified(data, PACK_POLICY)


def test_the_genuine_call_forms_pass_both_walls() -> None:
    from collections import OrderedDict, defaultdict

    for value in (bytearray(b"abc"), defaultdict(OrderedDict, {"a": OrderedDict()})):
        data = pickle.dumps(value, protocol=2)
        assert safeload.scan_bytes(data, policy=PACK_POLICY).safe
        assert _unpickle.unpickle_verified(data, PACK_POLICY) == value


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("pack", ["lightgbm", "xgboost", "catboost"])
def test_a_pack_model_pickled_at_any_protocol_passes_both_walls(pack: str, protocol: int) -> None:
    import io

    import joblib

    model = _fit(pack, Y_MULTI)
    handle = io.BytesIO()
    joblib.dump(model, handle, protocol=protocol)
    data = handle.getvalue()
    policy = TypePolicy.default().with_packs(pack)
    report = safeload.scan_bytes(data, policy=policy)
    assert report.safe, report.problems
    loaded = _unpickle.unpickle_verified(data, policy)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_bytearray_with_another_codec_is_refused_by_both_walls() -> None:
    data = _reduce("builtins", "bytearray", b"X\x01\x00\x00\x00aX\x05\x00\x00\x00utf_8")
    assert not safeload.scan_bytes(data, policy=PACK_POLICY).safe
    with pytest.raises(MalformedArtifactError):
        _unpickle.unpickle_verified(data, PACK_POLICY)


def test_stored_thread_counts_are_bounded() -> None:
    """Predict starts as many threads as the file says: LightGBM's stored params, XGBoost's
    Config; both within what a machine can run (as n_jobs is, validation/settings.py)."""
    from safeload.typegate.xgboost_model import check_xgboost_model
    from safeload.validation import validate_model

    lgb = _fit("lightgbm", Y_BIN)
    lgb[-1]._other_params["num_threads"] = 10**7
    with pytest.raises(MalformedArtifactError, match="num_threads"):
        validate_model(lgb)
    xgb = _fit("xgboost", Y_BIN)[-1].get_booster()
    document = read_ubjson(bytes(xgb.__getstate__()["handle"]))
    document["Config"]["learner"]["generic_param"]["nthread"] = "10000000"
    with pytest.raises(ValueError, match="nthread"):
        check_xgboost_model(write_ubjson(document))
