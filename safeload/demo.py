"""The demo behind ``safeload demo``: train, sign, verify-load, and watch tampering be refused.

It runs offline on a data set that ships with scikit-learn, in a temporary folder, and reports
through a callback so that the library itself never prints.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import joblib

from safeload.errors import ContractError, OperationalError, RefusedError
from safeload.inspecting import inspect
from safeload.keys import Keyring, generate_key
from safeload.loading import load, load_checked
from safeload.saving import save, write_signed_artifact


class _OpensMarker:
    """A "model" whose unpickling would create a file: the classic pickle attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def run_demo(say: Callable[[str], None], keep: str | os.PathLike[str] | None = None) -> bool:
    """Tell the story; return True when every step behaved as it must.

    The files are made in a temporary folder and removed at the end, or, with ``keep``, in
    that folder (new or empty) and kept for a look around.
    """
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="safeload-demo-") as tmp:
            return _tell(say, Path(tmp))
    root = Path(keep)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise OperationalError(f"{root} exists and is not an empty folder; give a new one")
    root.mkdir(parents=True, exist_ok=True)
    ok = _tell(say, root)
    say(f"The files are kept in {root}.")
    return ok


def _tell(say: Callable[[str], None], root: Path) -> bool:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ok = True
    say(f"Working in {root}")
    say("\n1. Training: a Pipeline(StandardScaler, LogisticRegression) on the wine data set")
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(X_train, y_train)
    accuracy = float(pipeline.score(X_test, y_test))
    say(f"   test accuracy {accuracy:.3f}")

    say("\n2. Signing: a fresh Ed25519 key; the trainer keeps secrets/trainer.key (0600),")
    say("   production trusts keys/trainer.pub. Saved in both formats, with a sample.")
    key = generate_key()
    key.save(root / "secrets" / "trainer")
    (root / "keys").mkdir()
    shutil.copy(root / "secrets" / "trainer.pub", root / "keys" / "trainer.pub")
    trusted = Keyring.from_dir(root / "keys")
    artifacts = {}
    for fmt in ("joblib", "skops"):
        artifacts[fmt] = Path(
            save(
                pipeline,
                root / "models" / f"wine-{fmt}" / "1.0.0",
                key=key,
                format=fmt,
                name=f"wine-{fmt}",
                version="1.0.0",
                metrics={"accuracy": accuracy},
                sample=X_test[:5],
            )
        )
        sizes = ", ".join(
            f"{c.name} {c.stat().st_size} B" for c in sorted(artifacts[fmt].iterdir())
        )
        say(f"   {fmt:<6} {artifacts[fmt]}: {sizes}")
    artifact = artifacts["joblib"]

    say("\n3. Production: safeload.load_checked (signature, every hash, type scan, unpickle,")
    say("   the saved sample predictions re-checked); its predict checks every input first")
    for fmt, path in artifacts.items():
        served = load_checked(path, trusted=trusted)
        same = bool((served.predict(X_test) == pipeline.predict(X_test)).all())
        ok &= same
        say(f"   {fmt:<6} predictions identical to the trained model: {same}")
    try:
        served.predict(X_test[:, :12])
        say("   input with 12 of the 13 columns: NOT REFUSED")
        ok = False
    except ContractError as exc:
        say(f"   input with 12 of the 13 columns refused: {exc}")

    say("\n4. Audit without loading: safeload inspect")
    report = inspect(artifact, trusted=trusted)
    ok &= report.verdict == "verified"
    say(
        f"   verdict {report.verdict}; signer {report.signer_name}; "
        f"{len(report.files)} files match; {len((report.scan or {}).get('globals', []))} "
        "types, all in the policy"
    )

    say("\n5. Attack: one byte of model.joblib flipped")
    tampered = root / "models" / "wine-joblib" / "1.0.1"
    tampered.mkdir()
    for child in artifact.iterdir():
        (tampered / child.name).write_bytes(child.read_bytes())
    blob = bytearray((tampered / "model.joblib").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (tampered / "model.joblib").write_bytes(bytes(blob))
    ok &= _expect_refusal(say, lambda: load(tampered, trusted=trusted))

    say("\n6. Attack: a validly signed model, but by a key production does not trust")
    stranger = generate_key()
    foreign = save(
        pipeline,
        root / "models" / "wine-joblib" / "1.0.2",
        key=stranger,
        name="wine-joblib",
        version="1.0.2",
    )
    ok &= _expect_refusal(say, lambda: load(foreign, trusted=trusted))

    say("\n7. Attack: a malicious pickle that would create a file, signed by the TRUSTED key")
    marker = root / "PWNED"
    buffer = io.BytesIO()
    joblib.dump(_OpensMarker(marker), buffer)
    evil = write_signed_artifact(
        root / "models" / "wine-joblib" / "9.9.9",
        {
            "model.joblib": buffer.getvalue(),
            "safeload.json": json.dumps(
                {
                    "safeload_format_version": 1,
                    "format": "joblib",
                    "name": "wine",
                    "version": "9.9.9",
                }
            ).encode(),
        },
        key=key,
    )
    ok &= _expect_refusal(say, lambda: load(evil, trusted=trusted))
    ran = marker.exists()
    ok &= not ran
    say(f"   payload ran: {ran}")
    say("\nAll steps behaved as expected." if ok else "\nSOMETHING WENT WRONG: see above.")
    return ok


def _expect_refusal(say: Callable[[str], None], attempt: Callable[[], object]) -> bool:
    try:
        attempt()
    except RefusedError as exc:
        say(f"   refused ({type(exc).__name__}): {exc}")
        return True
    say("   NOT REFUSED")
    return False
