"""Saved skops zips have every stored entry 64-byte aligned, so arrays load as views."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload
from safeload.zipalign import ALIGN, align_stored_entries


def _data_offsets(data: bytes) -> dict[str, int]:
    """Where each entry's data starts, located as zipfile locates it (its local header)."""
    offsets = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
            offsets[info.filename] = info.header_offset + 30 + name_len + extra_len
    return offsets


def _contents(data: bytes) -> list[tuple[str, int, int, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every CRC still matches
        return [
            (i.filename, i.compress_type, i.CRC, archive.read(i.filename))
            for i in archive.infolist()
        ]


def _zip(
    entries: list[tuple[str, bytes, int]], *, comment: bytes = b"", extra: bytes = b""
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content, compression in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.extra = extra
            archive.writestr(info, content)
        archive.comment = comment
    return out.getvalue()


def _model() -> Any:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 7))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return make_pipeline(StandardScaler(), KNeighborsClassifier(algorithm="brute")).fit(X, y)


def test_a_saved_skops_file_has_every_stored_entry_aligned_and_loads_as_views(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    model = _model()
    path = safeload.save(model, tmp_path / "m", key=key, format="skops")
    data = (path / "model.skops").read_bytes()
    offsets = _data_offsets(data)
    assert len(offsets) > 3 and all(at % ALIGN == 0 for at in offsets.values()), offsets
    # Still skops' own file, for skops and for any zip reader.
    _contents(data)
    again = skops.io.load(path / "model.skops", trusted=skops.io.get_untrusted_types(data=data))
    np.testing.assert_array_equal(again[-1]._fit_X, model[-1]._fit_X)

    loaded = safeload.load(path, trusted=safeload.Keyring.of([key]))
    fit_x = loaded[-1]._fit_X
    np.testing.assert_array_equal(fit_x, model[-1]._fit_X)
    assert not fit_x.flags.owndata and fit_x.flags.aligned  # a view of the verified buffer
    np.testing.assert_array_equal(loaded.predict(fit_x[:50]), model.predict(fit_x[:50]))


def test_a_compressed_save_is_left_as_skops_wrote_it(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    model = _model()
    path = safeload.save(model, tmp_path / "m", key=key, format="skops", compress=6)
    data = (path / "model.skops").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        assert all(len(i.extra) == 0 for i in archive.infolist())
    loaded = safeload.load(path, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(loaded[-1]._fit_X, model[-1]._fit_X)


def test_an_aligned_boosting_model_loads_and_predicts_the_same(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    model = HistGradientBoostingClassifier(max_iter=15).fit(X, (X[:, 0] > 0).astype(int))
    path = safeload.save(model, tmp_path / "m", key=key, format="skops")
    assert all(
        at % ALIGN == 0 for at in _data_offsets((path / "model.skops").read_bytes()).values()
    )
    loaded = safeload.load(path, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("extra", [b"", b"\xfe\xca\x00\x00", b"\x0a\x00\x04\x00abcd"])
@pytest.mark.parametrize("sizes", [[0], [1, 2, 3], [63, 64, 65, 129], [100_000, 7, 4096]])
def test_realigning_moves_only_the_layout(extra: bytes, sizes: list[int]) -> None:
    """Stored and deflated entries, names of any length, extra fields already present: the
    same entries, contents, CRCs and order come out, each stored entry's data aligned."""
    rng = np.random.default_rng(len(sizes))
    entries = [
        (f"{'n' * (i * 7 % 13 + 1)}{i}.npy", rng.bytes(size), (0, 8)[i % 2])
        for i, size in enumerate(sizes)
    ]
    data = _zip(entries, extra=extra)
    out = align_stored_entries(memoryview(data))
    assert out is not None
    assert _contents(bytes(out)) == _contents(data)
    stored = {name for name, _, compression in entries if compression == 0}
    assert all(at % ALIGN == 0 for name, at in _data_offsets(bytes(out)).items() if name in stored)
    assert align_stored_entries(memoryview(out)) == out  # aligned already: the same bytes


def _descriptor_zip() -> bytes:
    """What zipfile writes to a stream it cannot seek: data descriptors after each entry."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.buffer += bytes(data)
            return len(data)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w") as archive, archive.open("a.npy", "w") as entry:
        entry.write(b"x" * 100)
    return bytes(sink.buffer)


def _with_gap(data: bytes) -> bytes:
    """One byte between the last entry and the central directory, its offset moved to match."""
    end = len(data) - 22
    (cd_at,) = struct.unpack_from("<L", data, end + 16)
    moved = bytearray(data[:cd_at] + b"\x00" + data[cd_at:])
    struct.pack_into("<L", moved, end + 1 + 16, cd_at + 1)
    return bytes(moved)


@pytest.mark.parametrize(
    "unusual",
    [
        pytest.param(lambda: _zip([("a.npy", b"x" * 10, 0)], comment=b"hi"), id="comment"),
        pytest.param(_descriptor_zip, id="data-descriptor"),
        pytest.param(lambda: _with_gap(_zip([("a.npy", b"x" * 10, 0)])), id="gap"),
        pytest.param(lambda: _zip([("a.npy", b"x" * 10, 0)])[:-1], id="truncated"),
        pytest.param(lambda: b"", id="empty"),
        pytest.param(lambda: b"PK\x05\x07" + bytes(18), id="not-a-zip"),
    ],
)
def test_a_layout_it_does_not_know_is_kept_as_it_is(unusual: Any) -> None:
    """Alignment is a speed-up: any layout but zipfile's own seekable one is left alone."""
    assert align_stored_entries(memoryview(unusual())) is None


def test_an_encrypted_entry_is_kept_as_it_is() -> None:
    data = bytearray(_zip([("a.npy", b"x" * 10, 0)]))
    struct.pack_into("<H", data, 6, 0x1)  # the local header's flag: encrypted
    assert align_stored_entries(memoryview(data)) is None
