"""Golden artifacts from every past format version still verify and load, forever.

The artifacts under ``tests/golden/`` were written once by the code of their day and signed by
a key whose private half no longer exists (``tests/golden/README.md``). If one of these tests
fails, the reader broke compatibility: fix the code, never the golden.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safeload
from tests.test_cli import run
from tests.test_format_spec import independent_verify

GOLDEN = Path(__file__).parent / "golden"
FOLDER_NAME = re.compile(r"v(?P<version>[0-9]+)-(?P<format>joblib|skops)-(?P<method>shards|files)")
EXPECTED = {"v1-joblib-shards", "v1-skops-shards", "v1-joblib-files", "v1-skops-files"}

# Every artifact folder, so that a golden added for a later format version is picked up.
FOLDERS = sorted(p for p in GOLDEN.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
SIGNED_FILES = [
    (folder, name)
    for folder in FOLDERS
    for name in sorted(p.name for p in folder.iterdir())
    if name != "model.sig"
]

# A later scikit-learn warns when it unpickles estimators saved by this one; that is the
# version policy's business (tested elsewhere), not a compatibility failure of the format.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.InconsistentVersionWarning")


def _ids(values: list[Any]) -> list[str]:
    return [v.name if isinstance(v, Path) else f"{v[0].name}/{v[1]}" for v in values]


@pytest.fixture(scope="module")
def trusted() -> safeload.Keyring:
    ring = safeload.Keyring.from_dir(GOLDEN)
    assert "golden" in ring.names.values()
    return ring


def _metadata(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "safeload.json").read_bytes())
    return doc


def _decode(doc: dict[str, Any]) -> np.ndarray:
    """An array recorded in ``safeload.json`` (section 4 of docs/format.md), read independently."""
    return np.array(doc["values"], dtype=np.dtype(doc["dtype"])).reshape(doc["shape"])


def test_the_expected_goldens_exist() -> None:
    assert EXPECTED <= {p.name for p in FOLDERS}
    assert (GOLDEN / "golden.pub").is_file()
    assert not list(GOLDEN.rglob("*.key")), "a private key must never be committed"
    for folder in FOLDERS:
        assert FOLDER_NAME.fullmatch(folder.name), f"{folder.name}: name it v<N>-<format>-<method>"


def test_goldens_are_never_line_ending_converted() -> None:
    rules = (GOLDEN.parent.parent / ".gitattributes").read_text().splitlines()
    assert "tests/golden/** -text" in rules


@pytest.mark.parametrize("folder", FOLDERS, ids=_ids(FOLDERS))
def test_golden_is_what_its_folder_name_says(folder: Path) -> None:
    """Format version, model format and manifest serialization, checked by the spec verifier."""
    wanted = FOLDER_NAME.fullmatch(folder.name)
    assert wanted is not None
    metadata = _metadata(folder)
    assert metadata["safeload_format_version"] == int(wanted["version"])
    assert metadata["format"] == wanted["format"]
    assert (metadata["name"], metadata["version"]) == ("golden", folder.name)
    statement = independent_verify(folder, sorted(GOLDEN.glob("*.pub")))
    serialization = statement["predicate"]["serialization"]
    assert serialization["method"] == wanted["method"]
    assert ("shard_size" in serialization) == (wanted["method"] == "shards")


@pytest.mark.parametrize("folder", FOLDERS, ids=_ids(FOLDERS))
def test_golden_loads_and_predicts_its_saved_sample(
    folder: Path, trusted: safeload.Keyring
) -> None:
    model = safeload.load(
        folder, trusted=trusted, name="golden", version=folder.name, versions="ignore"
    )
    sample = _metadata(folder)["sample"]
    inputs = _decode(sample["inputs"])
    saved = sample["predictions"]
    np.testing.assert_array_equal(model.predict(inputs), _decode(saved["predict"]))
    np.testing.assert_allclose(
        model.predict_proba(inputs), _decode(saved["predict_proba"]), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("folder", FOLDERS, ids=_ids(FOLDERS))
def test_golden_inspects_as_verified(folder: Path, trusted: safeload.Keyring) -> None:
    report = safeload.inspect(folder, trusted=trusted)
    assert report.verdict == "verified", report.reasons
    assert report.reasons == [] and report.metadata_verified
    assert report.signer_trusted and report.signature_valid
    assert all(entry.matches for entry in report.files)


@pytest.mark.parametrize("folder", FOLDERS, ids=_ids(FOLDERS))
def test_golden_cli_verify_exits_0(folder: Path, tmp_path: Path) -> None:
    result = run("verify", str(folder), "--trusted", str(GOLDEN), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified"] is True and doc["version"] == folder.name


@pytest.mark.parametrize(("folder", "file_name"), SIGNED_FILES, ids=_ids(SIGNED_FILES))
def test_golden_with_one_byte_changed_is_refused(
    folder: Path, file_name: str, tmp_path: Path, trusted: safeload.Keyring
) -> None:
    copy = shutil.copytree(folder, tmp_path / folder.name)
    data = bytearray((copy / file_name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / file_name).write_bytes(bytes(data))
    with pytest.raises(safeload.TamperedArtifactError) as refused:
        safeload.load(copy, trusted=trusted, versions="ignore")
    assert refused.value.files == (file_name,)
    safeload.load(folder, trusted=trusted, versions="ignore")  # the original is untouched
