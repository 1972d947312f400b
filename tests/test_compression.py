"""Compression is detected by magic bytes and undone within limits (decompression bombs)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import time
import tracemalloc
import zlib

import joblib
import numpy as np
import pytest

from safeload.errors import MalformedArtifactError
from safeload.typegate import ScanLimits
from safeload.typegate.compression import decompress, detect_compression

COMPRESSORS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"]
MIB = 1 << 20


def _joblib_bytes(obj: object, compress: object = 0) -> bytes:
    handle = io.BytesIO()
    joblib.dump(obj, handle, compress=compress)
    return handle.getvalue()


@pytest.fixture(scope="module")
def model_obj() -> dict[str, object]:
    rng = np.random.default_rng(0)
    return {"w": rng.random((50, 7)), "labels": np.array(["a", "b", None], dtype=object)}


@pytest.mark.parametrize("name", COMPRESSORS)
def test_detects_every_joblib_compressor_by_magic(name: str, model_obj: object) -> None:
    data = _joblib_bytes(model_obj, (name, 3))
    assert detect_compression(data) == name
    assert detect_compression(memoryview(data)) == name
    assert detect_compression(bytearray(data)) == name


@pytest.mark.parametrize("name", COMPRESSORS)
def test_decompresses_to_exactly_what_joblib_wrote_uncompressed(
    name: str, model_obj: dict[str, object]
) -> None:
    raw = _joblib_bytes(model_obj)
    found, payload = decompress(_joblib_bytes(model_obj, (name, 3)), limits=ScanLimits())
    assert found == name
    assert isinstance(payload, bytearray)
    assert bytes(payload) == raw


def test_raw_pickle_is_returned_as_a_view_without_copy(model_obj: object) -> None:
    data = _joblib_bytes(model_obj)
    assert detect_compression(data) is None
    found, payload = decompress(data, limits=ScanLimits())
    assert found is None
    assert isinstance(payload, memoryview)
    assert payload.obj is data
    # a memoryview goes through as it is
    view = memoryview(data)
    assert decompress(view, limits=ScanLimits())[1] is view


def test_extension_is_never_consulted(tmp_path: object, model_obj: object) -> None:
    # A gzip stream is gzip whatever the file claims to be; a raw pickle is raw.
    assert detect_compression(gzip.compress(b"\x80\x04N.")) == "gzip"
    assert detect_compression(b"\x80\x04N.") is None


def test_legacy_zfile_container_is_refused() -> None:
    with pytest.raises(MalformedArtifactError, match="zfile"):
        detect_compression(b"ZF0x00000010" + zlib.compress(b"\x80\x04N."))
    with pytest.raises(MalformedArtifactError, match="zfile"):
        decompress(b"ZF" + b"\x00" * 20, limits=ScanLimits())


def _zlib_zeros(size: int, wbits: int = 15) -> bytes:
    """A compressed run of zeros, built without holding the zeros in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(MIB)
    parts = [comp.compress(chunk) for _ in range(size // MIB)]
    parts.append(comp.flush())
    return b"".join(parts)


def _bz2_zeros(size: int) -> bytes:
    comp = bz2.BZ2Compressor(9)
    chunk = bytes(MIB)
    parts = [comp.compress(chunk) for _ in range(size // MIB)]
    parts.append(comp.flush())
    return b"".join(parts)


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(lambda: _zlib_zeros(64 * MIB), id="zlib"),
        pytest.param(lambda: _zlib_zeros(64 * MIB, 31), id="gzip"),
        pytest.param(lambda: _bz2_zeros(64 * MIB), id="bz2"),
        pytest.param(lambda: lzma.compress(bytes(64 * MIB), format=lzma.FORMAT_XZ), id="xz"),
        pytest.param(lambda: lzma.compress(bytes(64 * MIB), format=lzma.FORMAT_ALONE), id="lzma"),
    ],
)
@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_decompression_bomb_is_refused_quickly_in_bounded_memory(bomb: object) -> None:
    data = bomb()  # type: ignore[operator]
    limits = ScanLimits(max_decompressed_bytes=8 * MIB)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(MalformedArtifactError, match="max_decompressed_bytes"):
            decompress(data, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    # The output buffer never grows much past the limit (one chunk of slack, plus growth).
    assert peak < 8 * MIB + 24 * MIB


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_ratio_limit_stops_a_small_bomb_early_with_default_size_limit() -> None:
    data = _bz2_zeros(64 * MIB)  # a few hundred bytes that expand 10^6-fold
    limits = ScanLimits(ratio_floor_bytes=4 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedArtifactError, match="max_ratio"):
            decompress(data, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB + 24 * MIB


def test_small_files_may_compress_well_below_the_ratio_floor() -> None:
    data = zlib.compress(bytes(2 * MIB))  # ratio ~1000 but tiny
    limits = ScanLimits(max_ratio=10, ratio_floor_bytes=4 * MIB)
    assert len(decompress(data, limits=limits)[1]) == 2 * MIB


@pytest.mark.parametrize("name", COMPRESSORS)
def test_size_limit_is_exact(name: str) -> None:
    payload = np.arange(100_000, dtype=np.int64).tobytes()
    data = _joblib_bytes(payload, (name, 3))
    _, out = decompress(data, limits=ScanLimits())
    size = len(out)
    assert len(decompress(data, limits=ScanLimits(max_decompressed_bytes=size))[1]) == size
    with pytest.raises(MalformedArtifactError):
        decompress(data, limits=ScanLimits(max_decompressed_bytes=size - 1))


@pytest.mark.parametrize("name", COMPRESSORS)
def test_truncated_stream_is_refused(name: str, model_obj: object) -> None:
    data = _joblib_bytes(model_obj, (name, 3))
    for cut in (len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedArtifactError):
            decompress(data[:cut], limits=ScanLimits())


@pytest.mark.parametrize("name", COMPRESSORS)
def test_corrupt_stream_is_refused(name: str, model_obj: object) -> None:
    data = bytearray(_joblib_bytes(model_obj, (name, 3)))
    # lz4 frames carry no content checksum by default: corrupt its checksummed header instead.
    start = 4 if name == "lz4" else len(data) // 2
    data[start : start + 16] = bytes(b ^ 0x5A for b in data[start : start + 16])
    with pytest.raises(MalformedArtifactError):
        decompress(bytes(data), limits=ScanLimits())


@pytest.mark.parametrize("name", COMPRESSORS)
def test_data_after_the_compressed_stream_is_refused(name: str, model_obj: object) -> None:
    data = _joblib_bytes(model_obj, (name, 3))
    with pytest.raises(MalformedArtifactError, match="after the end"):
        decompress(data + b"cos\nsystem\n", limits=ScanLimits())
    with pytest.raises(MalformedArtifactError, match="after the end"):
        decompress(data + data, limits=ScanLimits())


def test_lz4_without_the_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, model_obj: object
) -> None:
    data = _joblib_bytes(model_obj, ("lz4", 3))
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    with pytest.raises(MalformedArtifactError, match=r"safeload\[lz4\]"):
        decompress(data, limits=ScanLimits())


def test_garbage_after_a_magic_prefix_is_refused() -> None:
    for prefix in (b"\x78", b"\x1f\x8b", b"BZ", b"\x5d\x00", b"\xfd7zXZ", b"\x04\x22\x4d\x18"):
        with pytest.raises(MalformedArtifactError):
            decompress(prefix + b"\x00\xff" * 40, limits=ScanLimits())


def test_empty_input_is_raw() -> None:
    assert decompress(b"", limits=ScanLimits())[0] is None
    assert detect_compression(b"") is None


# --- the ratio is enforced continuously, so a bomb stops after about ratio_floor_bytes --------


GIB = 1 << 30


def _zlib_gigabyte() -> bytes:
    """1 GiB of zeros as one valid zlib stream (~1 MB), without compressing 1 GiB."""
    chunk = bytes(64 * MIB)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)  # the same after a full flush
    tail = comp.flush()
    adler = ((GIB % 65521) << 16) | 1  # Adler-32 of n zero bytes
    return first + block * (GIB // len(chunk) - 1) + tail[:-4] + adler.to_bytes(4, "big")


def _lz4_gigabyte() -> bytes:
    """1 GiB of zeros as one lz4 frame (~4.4 MB)."""
    import lz4.frame

    chunk = bytes(64 * MIB)
    comp = lz4.frame.LZ4FrameCompressor(block_linked=False)
    parts = [comp.begin(), *(comp.compress(chunk) for _ in range(GIB // len(chunk)))]
    return b"".join([*parts, comp.flush()])


def _attack_bombs() -> dict[str, bytes]:
    return {"zlib": _zlib_gigabyte(), "lz4": _lz4_gigabyte()}


@pytest.mark.parametrize("name", ["zlib", "lz4"])
@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_default_limits_stop_a_gigabyte_bomb_after_the_floor(name: str) -> None:
    data = _attack_bombs()[name]
    limits = ScanLimits()
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(MalformedArtifactError) as refused:
            decompress(data, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    # Never more than the floor plus one output chunk (and the buffer's growth), whatever the
    # bomb's size: 1 GiB before the ratio was enforced continuously.
    assert peak < limits.ratio_floor_bytes + 24 * MIB, peak
    message = str(refused.value)
    assert "ScanLimits.max_ratio" in message and "ScanLimits(max_ratio=" in message


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_ratio_counts_the_compressed_bytes_read_so_far() -> None:
    # 64 MiB of zeros, then 8 MiB that does not compress: ~9x over the whole file (which a
    # ratio checked against the file size accepts), but the zeros alone come ~1000x.
    comp = zlib.compressobj(6)
    parts = [comp.compress(bytes(MIB)) for _ in range(64)]
    parts.append(comp.compress(np.random.default_rng(0).bytes(8 * MIB)))
    parts.append(comp.flush())
    data = b"".join(parts)
    assert 64 * MIB / len(data) < 10
    with pytest.raises(MalformedArtifactError, match="max_ratio"):
        decompress(data, limits=ScanLimits())
    assert len(decompress(data, limits=ScanLimits(max_ratio=10_000))[1]) == 72 * MIB


def _fitted_models() -> dict[str, object]:
    import warnings

    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = make_classification(600, 12, random_state=0)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    docs = [" ".join(rng.choice(words, 20)) for _ in range(300)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "forest": RandomForestClassifier(20, random_state=0).fit(X, y),
            "hgb": HistGradientBoostingClassifier(max_iter=20).fit(X, y),
            "text": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs, y[:300]),
            "onehot": make_pipeline(OneHotEncoder(), LogisticRegression()).fit(
                rng.integers(0, 9, (600, 5)), y
            ),
        }


LEVELS = {"zlib": 9, "gzip": 9, "bz2": 9, "lzma": 9, "xz": 9, "lz4": 9}


def test_real_models_compress_far_below_the_default_ratio() -> None:
    # Measured over every estimator at every level (see compression.py): at most ~14x. Keep a
    # wide margin here so that the default max_ratio never refuses a genuine model.
    limit = ScanLimits().max_ratio
    for model_name, model in _fitted_models().items():
        raw = _joblib_bytes(model)
        for name, level in LEVELS.items():
            for lvl in (1, level):
                data = _joblib_bytes(model, (name, lvl))
                ratio = len(raw) / len(data)
                assert ratio < limit / 5, (model_name, name, lvl, ratio)
                assert bytes(decompress(data, limits=ScanLimits())[1]) == raw


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_a_genuine_all_zero_model_is_told_which_limit_and_how_to_raise_it() -> None:
    model = {"coef_": np.zeros((4, 4 * MIB))}  # 128 MiB of zeros: ~1000x with zlib
    data = _joblib_bytes(model, ("zlib", 6))
    with pytest.raises(MalformedArtifactError) as refused:
        decompress(data, limits=ScanLimits())
    assert "ScanLimits(max_ratio=" in str(refused.value)
    _, out = decompress(data, limits=ScanLimits(max_ratio=10_000))
    assert len(out) > 128 * MIB


# --- boundaries of the zlib loop (found by mutation testing) ----------------------------------


def _zlib_stream(data: bytes) -> bytes:
    out = zlib.compress(data, 9)
    assert detect_compression(out) == "zlib"
    return out


def test_a_stream_ending_exactly_on_an_input_chunk_is_not_trailing_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from safeload.typegate import compression

    payload = bytes(range(256)) * 64
    stream = _zlib_stream(payload)
    monkeypatch.setattr(compression, "_IN_CHUNK", len(stream))
    assert bytes(decompress(stream)[1]) == payload
    with pytest.raises(MalformedArtifactError, match="unexpected data after the end"):
        decompress(stream + b"\0")


def test_output_still_buffered_when_the_input_runs_out_is_drained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small output steps leave most of a well-compressed stream inside zlib at end of input."""
    from safeload.typegate import compression

    monkeypatch.setattr(compression, "_OUT_CHUNK", 1000)
    payload = bytes(MIB)
    assert bytes(decompress(_zlib_stream(payload))[1]) == payload
