"""Hostile objects for tests: each, if ever unpickled, creates a marker file."""

from __future__ import annotations

import io
from pathlib import Path

import joblib


class CreatesMarker:
    """Unpickling this calls ``open(marker, 'w')``: the marker proves that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def malicious_joblib(marker: Path, *, compress: int = 0) -> bytes:
    """A joblib file whose loading creates ``marker``."""
    buffer = io.BytesIO()
    joblib.dump({"model": CreatesMarker(marker)}, buffer, compress=compress)
    return buffer.getvalue()


def touch_marker(target: object) -> None:
    """A harmless function a user might trust as a stored *reference* (``callable=False``).

    Calling it creates the file named by the first string in ``target`` (a path, or a list or
    tuple holding one), so the marker proves that the pickle machine called a reference.
    """
    while isinstance(target, (list, tuple)) and target:
        target = target[0]
    if isinstance(target, str):
        Path(target).touch()
