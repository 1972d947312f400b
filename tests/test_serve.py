"""``safeload serve``: the real console script in a subprocess, on a free loopback port, over HTTP.

The store holds real fitted models saved and signed in the test: a DataFrame pipeline
(``churn``, whose metrics and config carry markup), a model trained on an array (``iris``) and
a tampered one (``bad``). The status page is checked in headless Chromium (the rendered DOM).
"""

from __future__ import annotations

import contextlib
import html.parser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import safeload
from tests.helpers import frame_pipeline

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SCRIPT = Path(sys.executable).parent / "safeload"
TOKEN = "t0ken-for-the-tests-0123456789"
XSS_KEY = "<img src=x onerror=\"document.title='PWNED'\">"
XSS_VALUE = "<script>document.title='PWNED'</script>"
COLUMNS = ["age", "income", "plan"]


def churn_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n)),
        }
    )


def save_churn(root: Path, key: safeload.SigningKey, version: str, name: str = "churn") -> Path:
    X = churn_frame()
    model = frame_pipeline(X, (X["age"] > 45).to_numpy().astype(int))
    return safeload.save(
        model,
        root / name / version,
        key=key,
        name=name,
        version=version,
        sample=X.head(5),
        metrics={"auc": 0.91, XSS_KEY: XSS_VALUE},
        config={"note": XSS_VALUE},
    )


def tamper(artifact: Path) -> None:
    model_file = next(
        p for p in artifact.iterdir() if p.name.startswith("model.") and p.suffix != ".sig"
    )
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("serve")
    key = safeload.generate_key()
    key.save(base / "keys" / "trainer")
    models = base / "models"
    save_churn(models, key, "1.0.0")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    iris = LogisticRegression(max_iter=300).fit(X, (X[:, 0] > 0).astype(int))
    safeload.save(
        iris, models / "iris" / "1.0.0", key=key, name="iris", version="1.0.0", sample=X[:3]
    )
    tamper(save_churn(models, key, "1.0.0", name="bad"))
    return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def stderr(self) -> str:
        return self.log.read_text()

    def client(self) -> Any:
        return httpx.Client(base_url=self.url, timeout=30)


@contextlib.contextmanager
def serving(base: Path, *options: str, token: bool = True, tag: str = "") -> Iterator[Server]:
    port = free_port()
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "safeload"]
    command += ["serve", str(base / "models"), "--trusted", str(base / "keys")]
    command += ["--port", str(port), "--state", str(base / f"state{tag}.json"), *options]
    env = {**os.environ, "SERVE_TOKEN": TOKEN}
    if token:
        command += ["--admin-token-env", "SERVE_TOKEN"]
    log = base / f"server{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the server exited: {server.stderr()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the server did not start: {server.stderr()}"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[Server]:
    with serving(store, "--max-body", "65536", "--max-rows", "50") as running:
        yield running


def records(n: int = 3) -> list[dict[str, Any]]:
    X = churn_frame(n, seed=7)
    return [
        {"plan": str(p), "income": float(i), "age": int(a)}  # key order differs from the schema
        for a, i, p in zip(X["age"], X["income"], X["plan"], strict=True)
    ]


# --- start-up: good models served, the tampered one refused and said so --------------------


def test_startup_serves_good_models_and_reports_the_tampered_one(server: Server) -> None:
    log = server.stderr()
    assert "serving churn 1.0.0" in log and "serving iris 1.0.0" in log
    assert "refused bad 1.0.0, not served: TamperedArtifactError" in log
    with server.client() as client:
        listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        assert listed["bad"]["verdict"] == "refused" and listed["bad"]["version"] is None
        assert "TamperedArtifactError" in listed["bad"]["refused"]["reason"]
        refused = client.post("/v1/models/bad/predict", json=records())
        assert refused.status_code == 503 and "refused" in refused.json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "served": ["churn", "iris"], "refused": ["bad"]}
        assert client.get("/healthz").json() == {"status": "ok"}


def test_provenance_routes(server: Server, store: Path) -> None:
    with server.client() as client:
        doc = client.get("/v1/models/churn").json()
        unknown = client.get("/v1/models/nope")
    assert doc["verdict"] == "served" and doc["version"] == "1.0.0"
    assert [(s["name"], s["status"]) for s in doc["signers"]] == [("trainer", "valid")]
    assert doc["signer"] == doc["signers"][0]["hint"]
    assert doc["metrics"]["auc"] == 0.91 and doc["metrics"][XSS_KEY] == XSS_VALUE
    assert [c["name"] for c in doc["schema"]["columns"]] == COLUMNS
    assert doc["versions"]["scikit-learn"] and doc["created_at"] and doc["estimator"]
    assert doc["methods"] == ["predict", "predict_proba"]
    assert unknown.status_code == 404 and "'nope'" in unknown.json()["detail"]


# --- predictions -------------------------------------------------------------------------------


def test_predict_json_and_csv_match_the_local_load(server: Server, store: Path) -> None:
    local = safeload.Store(store / "models", rollback="ignore").load_checked(
        "churn", "1.0.0", trusted=store / "keys"
    )
    rows = records(5)
    frame = pd.DataFrame(rows)[COLUMNS].astype(
        {"plan": pd.CategoricalDtype(["basic", "plus", "pro"])}
    )
    expected = local.predict(frame).tolist()
    csv_body = "plan,age,income\n" + "".join(
        f"{r['plan']},{r['age']},{r['income']!r}\n" for r in rows
    )
    with server.client() as client:
        as_list = client.post("/v1/models/churn/predict", json=rows)
        wrapped = client.post("/v1/models/churn/predict", json={"records": rows})
        as_csv = client.post(
            "/v1/models/churn/predict", content=csv_body, headers={"content-type": "text/csv"}
        )
        proba = client.post("/v1/models/churn/predict_proba", json=rows)
        array = client.post("/v1/models/iris/predict", json=[[0.5, 0, 0, 1], [-1, 0, 0, 0]])
    for answer in (as_list, wrapped, as_csv):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"model": "churn", "version": "1.0.0", "predictions": expected}
    assert proba.status_code == 200
    assert proba.json()["classes"] == [0, 1]
    assert np.allclose(proba.json()["probabilities"], local.predict_proba(frame))
    assert array.status_code == 200 and array.json()["predictions"] == [1, 0]


def test_predict_proba_only_where_the_model_has_it(store: Path) -> None:
    from sklearn.linear_model import LinearRegression

    # A regressor has no predict_proba: its route answers 404 (a second server, same keys).
    base = store.parent / "regressor"
    key = safeload.generate_key()
    key.save(base / "keys" / "trainer")
    X = np.arange(20.0).reshape(10, 2)
    safeload.save(
        LinearRegression().fit(X, 3 * X[:, 0]),
        base / "models" / "lin" / "1.0.0",
        key=key,
        name="lin",
        version="1.0.0",
    )
    with serving(base, token=False) as other, other.client() as client:
        assert client.post("/v1/models/lin/predict", json=[[1, 2]]).status_code == 200
        infinite = client.post("/v1/models/lin/predict", json=[[1.7e308, 1.7e308]])
        assert infinite.status_code == 422 and "cannot be sent as JSON" in infinite.text
        missing = client.post("/v1/models/lin/predict_proba", json=[[1, 2]])
        assert missing.status_code == 404 and "no predict_proba" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            [{"age": "forty", "income": 1.0, "plan": "basic"}],
            "column 'age' row 0: expected a number",
        ),
        (
            [{"age": 41.5, "income": 1.0, "plan": "basic"}],
            "column 'age' row 0: expected an integer",
        ),
        ([{"age": True, "income": 1.0, "plan": "basic"}], "column 'age' row 0: expected a number"),
        (
            [{"age": 2**70, "income": 1.0, "plan": "basic"}],
            "column 'age' row 0: 1180591620717411303424 is out of range",
        ),
        (
            [{"age": 40, "income": "NaN", "plan": "basic"}],
            "column 'income' row 0: expected a number",
        ),
        (
            [{"age": 40, "income": 1.0, "plan": "gold"}],
            "column 'plan' has unknown categories 'gold'",
        ),
        ([{"age": 40, "income": 1.0, "plan": 3}], "column 'plan' has unknown categories 3"),
        ([{"age": 40, "income": 1.0}], "missing columns ['plan']"),
        ([{"age": 40, "income": 1.0, "plan": "basic", "extra": 1}], "unexpected columns ['extra']"),
        ([{"age": None, "income": 1.0, "plan": "basic"}], "column 'age' row 0: a value is missing"),
    ],
)
def test_input_that_does_not_fit_the_schema_is_a_422_naming_the_column(
    server: Server, body: Any, problem: str
) -> None:
    with server.client() as client:
        answer = client.post("/v1/models/churn/predict", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "ContractError"
    assert problem in answer.json()["detail"]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        ("application/json", b"", 400, "empty"),
        ("application/json", b"{", 400, "not valid strict JSON"),
        ("application/json", b"[{'age': 1}]", 400, "not valid strict JSON"),
        ("application/json", b'[{"age": NaN, "income": 1, "plan": "basic"}]', 400, "NaN"),
        (
            "application/json",
            b'[{"age": 1, "income": 1e999, "plan": "basic"}]',
            400,
            "does not fit",
        ),
        (
            "application/json",
            b'[{"age": 1, "age": 2, "income": 1, "plan": "basic"}]',
            400,
            "duplicate key",
        ),
        ("application/json", b"1" * 5000, 400, "not valid strict JSON"),
        ("application/json", b"[" * 20000 + b"]" * 20000, 400, "not valid strict JSON"),
        ("application/json", b'{"rows": []}', 400, "expected a JSON list of records"),
        ("application/json", b'"text"', 400, "expected a JSON list of records"),
        ("application/json", b"[]", 400, "no records"),
        ("application/json", b"[1, 2]", 400, "record 0 is a JSON number"),
        (
            "application/json",
            b'[{"age": {"x": 1}, "income": 1, "plan": "basic"}]',
            400,
            "nested JSON object",
        ),
        (
            "application/json",
            b'[{"age": [1], "income": 1, "plan": "basic"}]',
            400,
            "nested JSON array",
        ),
        ("application/json", b"\xff\xfe[]", 400, "not valid strict JSON"),
        ("application/json; charset=utf-8", b"[[1, 2, 3]]", 400, "record 0 is a JSON array"),
        ("text/plain", b"age\n1\n", 415, "unsupported Content-Type"),
        ("", b"[]", 415, "unsupported Content-Type"),
        ("application/x-www-form-urlencoded", b"age=1", 415, "unsupported Content-Type"),
        ("text/csv", b"", 400, "empty"),
        ("text/csv", b"age,income,plan\n", 400, "no rows"),
        ("text/csv", b"age,income,plan\n1,2\n", 400, "line 2 has 2 fields, the header has 3"),
        ("text/csv", b"age,age,plan\n1,2,basic\n", 400, "names column 'age' twice"),
        ("text/csv", b"age,,plan\n1,2,basic\n", 400, "empty column name"),
        ("text/csv", b'age,income,plan\n1,"2,basic\n', 400, "malformed CSV"),
        ("text/csv", b"age,income,plan\n1,2\x00,basic\n", 422, "'income' row 0: expected a number"),
        ("text/csv", b"age,income,plan\n\xff,2,basic\n", 400, "not UTF-8"),
        (
            "text/csv",
            b"45,50000.0,basic\n46,1.0,pro\n",
            422,
            "missing columns ['age', 'income', 'plan']",
        ),
        (
            "text/csv",
            b"age,income,plan,extra\n45,1.0,basic,x\n",
            422,
            "unexpected columns ['extra']",
        ),
        (
            "text/csv",
            b"age,income,plan\nold,1.0,basic\n",
            422,
            "column 'age' row 0: expected an integer",
        ),
        (
            "text/csv",
            b"age,income,plan\n4,nan,basic\n",
            422,
            "column 'income' row 0: 'nan' does not fit",
        ),
        ("text/csv", b"age,income,plan\n4,1,gold\n", 422, "unknown categories 'gold'"),
    ],
)
def test_malformed_input_is_a_4xx_never_a_500(
    server: Server, content_type: str, body: bytes, status: int, message: str
) -> None:
    with server.client() as client:
        answer = client.post(
            "/v1/models/churn/predict", content=body, headers={"content-type": content_type}
        )
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"], answer.text


def test_array_model_rows_are_checked(server: Server) -> None:
    with server.client() as client:
        short = client.post("/v1/models/iris/predict", json=[[1, 2, 3]])
        text = client.post("/v1/models/iris/predict", json=[[1, 2, 3, "x"]])
        csv = client.post(
            "/v1/models/iris/predict", content=b"1,2,3,4\n", headers={"content-type": "text/csv"}
        )
    assert short.status_code == 422 and "row 0 has 3 values, the model expects 4" in short.text
    assert text.status_code == 422 and "expected a number" in text.text
    assert csv.status_code == 200


def test_body_and_row_limits_are_413(server: Server) -> None:
    big = json.dumps(records(1) * 2000).encode()  # over --max-body 65536
    assert len(big) > 65536

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    with server.client() as client:
        declared = client.post(
            "/v1/models/churn/predict", content=big, headers={"content-type": "application/json"}
        )
        streamed = client.post(
            "/v1/models/churn/predict",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        rows = client.post("/v1/models/churn/predict", json=records(51))
        csv_rows = "age,income,plan\n" + "40,1.0,basic\n" * 51
        as_csv = client.post(
            "/v1/models/churn/predict", content=csv_rows, headers={"content-type": "text/csv"}
        )
        fifty = client.post("/v1/models/churn/predict", json=records(50))
    assert declared.status_code == 413 and "--max-body" in declared.json()["detail"]
    assert streamed.status_code == 413 and "longer than 65536" in streamed.json()["detail"]
    assert rows.status_code == 413 and "at most 50" in rows.json()["detail"]
    assert as_csv.status_code == 413 and "at most 50" in as_csv.json()["detail"]
    assert fifty.status_code == 200


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server: Server) -> None:
    """Content-Length alone decides: the server answers 413 without waiting for 100 MB."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n[{"
        )
        reply = b""
        while b"more than" not in reply:  # headers and body may come in separate segments
            chunk = raw.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"100000000 bytes, more than 65536" in reply


def test_unknown_model_and_route_are_404(server: Server) -> None:
    with server.client() as client:
        assert client.post("/v1/models/nope/predict", json=records()).status_code == 404
        assert client.post("/v1/models/churn/transform", json=records()).status_code == 404
        assert client.get("/docs").status_code == 404  # no CDN-backed interactive docs


# --- admin routes ----------------------------------------------------------------------------


def test_admin_routes_are_off_unless_enabled(store: Path) -> None:
    with serving(store, token=False, tag="-noadmin") as plain, plain.client() as client:
        for auth in ({}, {"authorization": f"Bearer {TOKEN}"}):
            assert client.post("/v1/models/churn/reload", headers=auth).status_code == 404
            assert client.post("/v1/reload", headers=auth).status_code == 404


def test_admin_routes_need_the_token(server: Server) -> None:
    with server.client() as client:
        none = client.post("/v1/models/churn/reload")
        wrong = client.post("/v1/models/churn/reload", headers={"authorization": "Bearer nope"})
        prefix = client.post(
            "/v1/models/churn/reload", headers={"authorization": f"Bearer {TOKEN[:-1]}"}
        )
        longer = client.post(
            "/v1/models/churn/reload", headers={"authorization": f"Bearer {TOKEN}x"}
        )
        right = client.post("/v1/models/churn/reload", headers={"authorization": f"Bearer {TOKEN}"})
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == prefix.status_code == longer.status_code == 403
    assert right.status_code == 200 and right.json()["reloaded"] is True


def test_a_short_or_unset_token_refuses_to_start(store: Path) -> None:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "safeload"]
    base = [*command, "serve", str(store / "models"), "--trusted", str(store / "keys")]
    for env in ({"SERVE_TOKEN": "short"}, {}):
        environ = {k: v for k, v in os.environ.items() if k != "SERVE_TOKEN"} | env
        done = subprocess.run(
            [*base, "--admin-token-env", "SERVE_TOKEN"],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
        )
        assert done.returncode == 2 and "SERVE_TOKEN" in done.stderr


# --- reload ------------------------------------------------------------------------------------


@pytest.fixture
def reloading(tmp_path: Path) -> Iterator[tuple[Server, Path, safeload.SigningKey]]:
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    save_churn(tmp_path / "models", key, "1.0.0")
    with serving(tmp_path) as running:
        yield running, tmp_path / "models", key


def test_reload_serves_a_good_new_version_and_keeps_the_old_one_on_refusal(
    reloading: tuple[Server, Path, safeload.SigningKey],
) -> None:
    server, models, key = reloading
    auth = {"authorization": f"Bearer {TOKEN}"}
    with server.client() as client:
        save_churn(models, key, "1.1.0")
        good = client.post("/v1/models/churn/reload", headers=auth).json()
        assert good == {
            "name": "churn",
            "reloaded": True,
            "version": "1.1.0",
            "previous": "1.0.0",
            "attempted": "1.1.0",
            "refused": None,
        }
        assert client.post("/v1/models/churn/predict", json=records()).json()["version"] == "1.1.0"
        tamper(save_churn(models, key, "1.2.0"))
        bad = client.post("/v1/models/churn/reload", headers=auth).json()
        assert (
            bad["reloaded"] is False and bad["version"] == "1.1.0" and bad["attempted"] == "1.2.0"
        )
        assert bad["refused"].startswith("TamperedArtifactError: ")
        still = client.post("/v1/models/churn/predict", json=records())
        assert still.status_code == 200 and still.json()["version"] == "1.1.0"
        doc = client.get("/v1/models/churn").json()
        assert doc["verdict"] == "served" and doc["version"] == "1.1.0"
        assert doc["refused"]["version"] == "1.2.0"
    assert "refused 1.2.0, still serving 1.1.0: TamperedArtifactError" in server.stderr()


def test_sighup_reloads_every_model(reloading: tuple[Server, Path, safeload.SigningKey]) -> None:
    server, models, key = reloading
    save_churn(models, key, "2.0.0")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    with server.client() as client:
        while client.get("/v1/models/churn").json()["version"] != "2.0.0":
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.2)
        assert client.post("/v1/models/churn/predict", json=records()).json()["version"] == "2.0.0"
    assert server.process.poll() is None and "churn: serving 2.0.0" in server.stderr()


def test_all_refused_still_starts_not_ready(tmp_path: Path) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    tamper(save_churn(tmp_path / "models", key, "1.0.0"))
    with serving(tmp_path, token=False) as running, running.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["refused"] == ["churn"]
    assert "no model passed the gate" in running.stderr()


# --- the status page, in a real browser --------------------------------------------------------


class _Dom(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.tags and self.tags[-1][0] == "title":
            self.title += data


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, profile: Path) -> str:
    browser = chromium()
    if browser is None:
        assert not os.environ.get("SAFELOAD_REQUIRE_BROWSER"), "chromium went missing"
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
    ]
    done = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_status_page_in_headless_chromium_lists_models_and_renders_markup_inert(
    server: Server, tmp_path: Path
) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no external asset
    dom = _Dom()
    dom.feed(dump_dom(server.url + "/", tmp_path / "profile"))
    sections = {a["data-model"]: a["data-verdict"] for t, a in dom.tags if t == "section"}
    assert sections == {"bad": "refused", "churn": "served", "iris": "served"}
    tags = {t for t, _ in dom.tags}
    assert "img" not in tags and "script" not in tags, "markup from metadata became elements"
    text = "".join(dom.text)
    assert XSS_KEY in text and XSS_VALUE in text  # shown as text, exactly as signed
    assert dom.title == "safeload serve"  # the injected handlers would have set 'PWNED'
    assert "safeload serve" in text and "TamperedArtifactError" in text


# --- the body parser alone: what the server builds from a body ---------------------------------


def test_text_columns_take_strings_only_and_keep_the_saved_dtype() -> None:
    from safeload.serve.inputs import parse_batch

    schema = {
        "kind": "dataframe",
        "columns": [{"name": "city", "dtype": "str"}, {"name": "n", "dtype": "int64"}],
    }
    frame = parse_batch(
        b'[{"n": 1, "city": "Oslo"}, {"city": null, "n": 2}]', "application/json", schema, 10
    )
    assert list(frame.columns) == ["city", "n"] and str(frame["city"].dtype) == "str"
    assert str(frame["n"].dtype) == "int64"
    with pytest.raises(safeload.ContractError, match=r"column 'city' row 0: expected a string"):
        parse_batch(b'[{"n": 1, "city": 3}]', "application/json", schema, 10)


def test_many_unexpected_columns_are_refused_at_once() -> None:
    from safeload.serve.inputs import parse_batch

    schema = {"kind": "dataframe", "columns": [{"name": "n", "dtype": "int64"}]}
    record = {f"c{i}": i for i in range(60_000)}  # about 1 MiB of keys
    started = time.perf_counter()
    with pytest.raises(
        safeload.ContractError, match=r"missing columns \['n'\]; unexpected columns"
    ):
        parse_batch(json.dumps([record]).encode(), "application/json", schema, 10)
    assert time.perf_counter() - started < 5


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_VALUES = (
    _SCALARS
    | st.lists(_SCALARS, max_size=2)
    | st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2)
)
_KEYS = st.sampled_from([*COLUMNS, "extra", ""]) | st.text(max_size=4)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=4).map(
            lambda rows: json.dumps(rows, allow_nan=True).encode()
        ),
        st.lists(
            st.lists(st.text(alphabet=',"\n0123456789.ab-e', max_size=8), max_size=4), max_size=4
        ).map(lambda rows: ("age,income,plan\n" + "\n".join(",".join(r) for r in rows)).encode()),
    ),
    kind=st.sampled_from(["application/json", "text/csv"]),
)
def test_any_body_is_a_batch_or_a_4xx(store: Path, body: bytes, kind: str) -> None:
    """Whatever the body, the parser and the checked predict end in a result or a 4xx error."""
    from safeload.serve.inputs import BadRequest, parse_batch

    artifact = _loaded(store)
    try:
        batch = parse_batch(body, kind, artifact.schema, 50)
        predictions = artifact.predict(batch)
    except BadRequest as exc:
        assert exc.status in (400, 413, 415) and str(exc)
    except safeload.ContractError as exc:
        assert str(exc).startswith(("prediction input does not match", "this model was trained"))
    except (ValueError, TypeError) as exc:  # the model's own refusal (a NaN): the server's 422
        assert str(exc)
    else:
        assert len(predictions) == len(batch) > 0


_CACHE: dict[Path, Any] = {}


def _loaded(store: Path) -> Any:
    if store not in _CACHE:
        _CACHE[store] = safeload.load_checked(
            store / "models" / "churn" / "1.0.0", trusted=store / "keys"
        )
    return _CACHE[store]


# --- drift: the running report over the inputs scored -------------------------------------------


def test_drift_route_reports_the_inputs_scored(tmp_path: Path) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    X = churn_frame(3000, seed=0)
    model = frame_pipeline(X, (X["age"] > 45).to_numpy().astype(int))
    safeload.save(
        model, tmp_path / "models" / "churn" / "1.0.0", key=key, name="churn", version="1.0.0",
        training_data=X,
    )  # fmt: skip
    save_churn(tmp_path / "models", key, "1.0.0", name="nostats")  # saved without training_data

    def body(frame: pd.DataFrame) -> str:
        return frame.to_csv(index=False)

    csv = {"content-type": "text/csv"}
    with serving(tmp_path, token=False) as server, server.client() as client:
        empty = client.get("/v1/models/churn/drift").json()
        assert empty["rows"] == 0 and empty["verdict"] == "watch" and empty["version"] == "1.0.0"
        for seed in (1, 2, 3):
            scored = client.post(
                "/v1/models/churn/predict", content=body(churn_frame(400, seed)), headers=csv
            )
            assert scored.status_code == 200, scored.text
        steady = client.get("/v1/models/churn/drift").json()
        assert steady["rows"] == 1200 and steady["verdict"] == "stable", steady
        richer = churn_frame(2000, seed=4)
        richer["income"] = richer["income"] * 2
        moved = client.post("/v1/models/churn/predict", content=body(richer), headers=csv)
        assert moved.status_code == 200  # drift never blocks a prediction
        shifted = client.get("/v1/models/churn/drift").json()
        assert shifted["rows"] == 3200 and shifted["verdict"] == "shifted"
        assert shifted["shifted_features"] == ["income"]
        assert client.get("/v1/models/nope/drift").status_code == 404
        none = client.get("/v1/models/nostats/drift")
        assert none.status_code == 404 and "training_data" in none.json()["detail"]
