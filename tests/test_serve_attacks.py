"""``safeload serve`` attacked: bodies, paths, admin routes and markup, against the real server.

Every malformed request must be answered with a 4xx whose JSON says what is wrong, in bounded
time and memory, never a 500 and never a hang; the server must answer ``/healthz`` afterwards.
Attacks that cost memory by design also run the body parser alone in a child process under an
address-space limit (``RLIMIT_AS``), so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import safeload
from tests.test_serve import TOKEN, Server, records, save_churn, serving

httpx = pytest.importorskip("httpx")

BODY_TIMEOUT = 2
MARKUP = "<script>document.title='PWNED'</script>"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("serve-attacks")
    key = safeload.generate_key()
    key.save(base / "keys" / "trainer")
    models = base / "models"
    save_churn(models, key, "1.0.0")
    rng = np.random.default_rng(3)
    X = pd.DataFrame({MARKUP: rng.normal(size=40), "x'\"><b>": rng.normal(size=40)})
    marked = LogisticRegression().fit(X, (X[MARKUP] > 0).astype(int))
    safeload.save(
        marked, models / "marked" / "1.0.0", key=key, name="marked", version="1.0.0", sample=X[:3]
    )
    return base


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[Server]:
    # Default body and row limits (1 MiB, 10,000 rows): the attacks below are sized to them.
    with serving(store, "--body-timeout", str(BODY_TIMEOUT)) as running:
        yield running


def post(server: Server, body: bytes, content_type: str | bytes, model: str = "churn") -> Any:
    with server.client() as client:
        return client.post(
            f"/v1/models/{model}/predict", content=body, headers={"content-type": content_type}
        )


def assert_healthy(server: Server) -> None:
    assert server.process.poll() is None, server.stderr()[-2000:]
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        good = client.post("/v1/models/churn/predict", json=records(2))
        assert good.status_code == 200, good.text


def raw_request(
    server: Server, head: bytes, pieces: list[bytes], pause: float
) -> tuple[bytes, float]:
    """Send ``head`` then each piece ``pause`` seconds apart; the answer and when it came."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT * 10) as sock:
        sock.sendall(head)
        for piece in pieces:
            time.sleep(pause)
            try:
                sock.sendall(piece)
            except OSError:  # the server answered and closed: what is tested
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - started


# --- bodies that never finish -----------------------------------------------------------------


def test_a_body_that_stops_arriving_is_a_408_not_a_held_connection(server: Server) -> None:
    head = (
        b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n["
    )
    answer, took = raw_request(server, head, [], 0)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"--body-timeout" in answer and took < BODY_TIMEOUT + 10
    assert_healthy(server)


def test_a_slowloris_body_is_cut_at_the_deadline(server: Server) -> None:
    # Each byte arrives in time for a per-read timeout: only a deadline on the whole body ends it.
    head = (
        b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, took = raw_request(server, head, [b"1\r\n \r\n"] * 40, 0.25)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert took < BODY_TIMEOUT + 10
    assert_healthy(server)


def closed_after(server: Server, pieces: list[bytes], pause: float) -> float | None:
    """Seconds until the server closed a connection fed ``pieces``; None if it never did."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT * 5) as sock:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:
                return time.monotonic() - started
            time.sleep(pause)
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            return None
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("pieces", "pause"),
    [
        ([b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: t\r\n"], 0),  # a head never ended
        ([b"G", b"E", b"T", b" ", b"/", b"h"] + [b"e"] * 30, 0.25),  # one byte at a time
        ([b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\n"], 0),  # the next
    ],
)
def test_a_request_head_that_never_ends_is_cut_at_the_deadline(
    server: Server, pieces: list[bytes], pause: float
) -> None:
    # Each byte in time for uvicorn's keep-alive timer (reset by any byte): only a deadline on
    # the whole head ends it, else each such client holds a connection and a socket forever.
    took = closed_after(server, pieces, pause)
    assert took is not None and took < BODY_TIMEOUT + 8
    assert_healthy(server)


# --- JSON bodies --------------------------------------------------------------------------------


def spread_keys(n_records: int, keys_per_record: int) -> bytes:
    """Records that each name keys no other record names: few bytes, a huge union of columns."""
    recs = [{f"k{i}_{j}": 0 for j in range(keys_per_record)} for i in range(n_records)]
    return json.dumps(recs, separators=(",", ":")).encode()


def test_keys_spread_over_records_are_refused_without_a_dense_table(server: Server) -> None:
    body = spread_keys(10_000, 8)  # under 1 MiB: 80,000 names by 10,000 rows if densified
    assert len(body) < 1024 * 1024
    answer = post(server, body, "application/json")
    assert answer.status_code == 422, answer.text[:300]
    assert "unexpected columns" in answer.json()["detail"]
    assert_healthy(server)


_CHILD = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
from safeload.serve.inputs import parse_batch
from safeload.errors import ContractError
body = sys.stdin.buffer.read()
schema = {"kind": "dataframe", "columns": [{"name": "a", "dtype": "float64"}]}
started = time.perf_counter()
try:
    parse_batch(body, "application/json", schema, 10_000)
except ContractError as exc:
    print("refused", round(time.perf_counter() - started, 2), str(exc)[:200])
"""


def test_keys_spread_over_records_cost_no_more_than_the_body_in_a_child() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=spread_keys(10_000, 8),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    verdict, seconds, message = done.stdout.decode().split(" ", 2)
    assert verdict == "refused" and "unexpected columns" in message
    assert float(seconds) < 10


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        # Python's int-str conversion limit (4300 digits): a 400, not a traceback.
        (b'[{"age": ' + b"9" * 5000 + b', "income": 1.0, "plan": "basic"}]', 400, "strict JSON"),
        # Under the limit: an integer no column can hold, named by its size, not printed.
        (
            b'[{"age": 1, "income": ' + b"9" * 4000 + b', "plan": "basic"}]',
            422,
            "<int of 13288 bits> does not fit in a float64",
        ),
        (b'[{"age": 1, "income": 1e999999, "plan": "basic"}]', 400, "does not fit in a float"),
        (b'[{"age": 1, "income": -Infinity, "plan": "basic"}]', 400, "Infinity"),
        (b'[{"age": 1, "income": NaN, "plan": "basic"}]', 400, "NaN"),
        (b'{"records": [], "records": []}', 400, "duplicate key"),
        (b'\xef\xbb\xbf[{"age": 1, "income": 1.0, "plan": "basic"}]', 400, "BOM"),
        ('[{"age": 1}]'.encode("utf-16"), 400, "strict JSON"),
        (b'[{"age": 1, "income": 1.0, "plan": "\xc3"}]', 400, "strict JSON"),
        (b"[" * 500_000 + b"]" * 500_000, 400, "strict JSON"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "strict JSON"),
        (b"[" + b"{}," * 200_000 + b"{}]", 413, "too many rows"),
        (b"[" + b"0," * 400_000 + b"0]", 413, "too many rows"),
        (b"[" + b'"",' * 5_000 + b'""]', 400, "record 0 is a JSON string"),
        (
            b'[{"age": 1, "income": 1.0, "plan": "basic", "' + MARKUP.encode() + b'": 1}]',
            422,
            "unexpected columns",
        ),
        (b" \n\t ", 400, "empty"),
    ],
)
def test_hostile_json_is_a_clear_4xx(
    server: Server, body: bytes, status: int, message: str
) -> None:
    answer = post(server, body, "application/json")
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == "application/json"
    assert message in answer.json()["detail"]
    assert len(answer.content) < 4000  # the message is bounded, whatever the body held


# --- CSV bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "column"),
    [
        ("1_000", "age"),  # Python's int() takes digit separators; no CSV writer emits them
        ("\u0661\u0662", "age"),  # nor Arabic-Indic digits
        ("\uff11", "age"),  # nor fullwidth ones
        ("0x10", "age"),
        ("1_0.5", "income"),
        ("\u0661.5", "income"),
        ("infinity", "income"),
        ("1e5_0", "income"),
        ("\u20071.0", "income"),  # a Unicode space around the number
    ],
)
def test_csv_numbers_are_plain_decimal_text(server: Server, cell: str, column: str) -> None:
    row = {"age": "40", "income": "1.0", "plan": "basic", column: cell}
    body = f"age,income,plan\n{row['age']},{row['income']},{row['plan']}\n".encode()
    answer = post(server, body, "text/csv")
    assert answer.status_code == 422, answer.text[:300]
    assert f"column {column!r} row 0" in answer.json()["detail"]


def test_csv_numbers_as_writers_write_them_are_read() -> None:
    from safeload.serve.inputs import parse_batch

    schema = {
        "kind": "dataframe",
        "columns": [{"name": "i", "dtype": "int64"}, {"name": "f", "dtype": "float64"}],
    }
    cells = [("-3", "-1.5e-05"), ("+4", "2."), (" 5 ", ".5"), ("0", "1E+10"), ("7", "")]
    body = "i,f\n" + "\n".join(f"{i},{f}" for i, f in cells)
    frame = parse_batch(body.encode(), "text/csv", schema, 10)
    assert frame["i"].tolist() == [-3, 4, 5, 0, 7]
    assert frame["f"].tolist()[:4] == [-1.5e-05, 2.0, 0.5, 1e10]
    assert np.isnan(frame["f"].iloc[4])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"age,income,plan\n" + b"1" * 200_000 + b",1,basic\n", 400, "field larger than"),
        (b"age,income,plan\n" + b"," * 1_000_000 + b"\n", 400, "fields, the header has 3"),
        (b"," * 1_000_000 + b"\n", 400, "empty column name"),
        (b"age,income,plan\n" + b"1,1,basic\n" * 10_001, 413, "too many rows"),
        (b"\n" * 1_000_000, 400, "empty"),
        (b"age,income,plan\n" + b"\n" * 1_000_000, 400, "no rows"),
        (b'age,income,plan\n1,1.0,"bas\nic"\n', 422, "unknown categories"),
        (b"AGE,Income,plan\n1,1.0,basic\n", 422, "missing columns"),
        (b"age,income,plan\n1,1.0,basic,extra\n", 400, "fields, the header has 3"),
        (b"\xef\xbb\xbfage,income,plan\n1,1.0,basic\n", 200, ""),
        (b"age,income,plan\r\n1,1.0,basic\r\n", 200, ""),
        (b"age,income,plan\n1,true,basic\n", 422, "expected a number"),
    ],
)
def test_hostile_csv_is_a_clear_4xx(server: Server, body: bytes, status: int, message: str) -> None:
    answer = post(server, body, "text/csv")
    assert answer.status_code == status, answer.text[:300]
    if status != 200:
        assert message in answer.json()["detail"]
        assert len(answer.content) < 4000


def test_array_rows_of_different_widths_are_a_422_even_without_a_saved_width() -> None:
    from safeload.serve.inputs import parse_batch

    schema: dict[str, Any] = {"kind": "array", "dtype": "float64"}  # no n_features_in
    for body, kind in ((b"[[1, 2], [1, 2, 3]]", "application/json"), (b"1,2\n1\n", "text/csv")):
        with pytest.raises(safeload.ContractError, match="row 1 has .* values, row 0 has 2"):
            parse_batch(body, kind, schema, 10)


# --- headers, content types, paths ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", 200),
        ("APPLICATION/JSON", 200),
        ("application/json-seq", 415),
        ("application/jsonx", 415),
        ("multipart/form-data; boundary=x", 415),
        (b"text/csv\xff", 415),
    ],
)
def test_content_types(server: Server, content_type: str | bytes, status: int) -> None:
    answer = post(server, json.dumps(records(1)).encode(), content_type)
    assert answer.status_code == status, answer.text[:300]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/../predict",
        "/v1/models/%2e%2e/predict",
        "/v1/models/..%2Fchurn/predict",
        "/v1/models/churn%2F..%2Firis/predict",
        "/v1/models/" + "a" * 8000 + "/predict",
        "/v1/models/%00/predict",
        "/v1/models/%ff%fe/predict",
        "/v1/models/\u0441hurn/predict",  # a Cyrillic letter: another name, not churn
    ],
)
def test_odd_model_names_are_a_bounded_404(server: Server, path: str) -> None:
    with server.client() as client:
        answer = client.post(path, json=records(1))
    assert answer.status_code == 404, answer.text[:300]
    assert answer.headers["content-type"] == "application/json"
    assert len(answer.content) < 1000


def test_the_admin_token_is_read_from_the_authorization_header_only(server: Server) -> None:
    with server.client() as client:
        query = client.post(f"/v1/reload?token={TOKEN}&access_token={TOKEN}")
        cookie = client.post("/v1/reload", headers={"cookie": f"token={TOKEN}"})
        basic = client.post("/v1/reload", headers={"authorization": f"Basic {TOKEN}"})
        lower = client.post("/v1/reload", headers={"authorization": f"bearer {TOKEN}"})
        spaced = client.post("/v1/reload", headers={"authorization": f"Bearer  {TOKEN}"})
        latin = client.post("/v1/reload", headers={"authorization": b"Bearer \xff\xfe"})
        traversal = client.post(
            "/v1/models/%2e%2e/reload", headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert query.status_code == cookie.status_code == 401
    assert basic.status_code == lower.status_code == spaced.status_code == 403
    assert latin.status_code == 403
    assert traversal.status_code == 404 and "no model '..' in the store" in traversal.text


# --- markup in signed metadata ------------------------------------------------------------------


def test_feature_names_holding_markup_are_inert_on_the_page_and_in_json(server: Server) -> None:
    with server.client() as client:
        page = client.get("/")
        doc = client.get("/v1/models/marked")
        refused = client.post("/v1/models/marked/predict", json=[{MARKUP: 1.0}])
    assert page.status_code == 200 and "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert MARKUP not in page.text and "<b>" not in page.text
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;&lt;/script&gt;" in page.text
    assert doc.headers["content-type"] == "application/json"
    assert [c["name"] for c in doc.json()["schema"]["columns"]] == [MARKUP, "x'\"><b>"]
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/json"


# --- concurrency --------------------------------------------------------------------------------


def test_reloading_while_predicting_never_fails_a_prediction(server: Server) -> None:
    failures: list[str] = []
    stop = threading.Event()

    def predict() -> None:
        with server.client() as client:
            while not stop.is_set():
                answer = client.post("/v1/models/churn/predict", json=records(3))
                if answer.status_code != 200:
                    failures.append(answer.text[:200])

    workers = [threading.Thread(target=predict) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        with server.client() as client:
            for _ in range(3):
                reload = client.post(
                    "/v1/models/churn/reload", headers={"authorization": f"Bearer {TOKEN}"}
                )
                assert reload.status_code == 200 and reload.json()["reloaded"], reload.text
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert not failures
    assert_healthy(server)


def test_no_attack_left_a_500_in_the_log(server: Server) -> None:
    log = server.stderr()
    assert '" 500' not in log and "Traceback" not in log, log[-3000:]
    assert_healthy(server)


def test_records_that_omit_columns_cannot_cost_a_row_of_cells_each() -> None:
    """One full record, then empty ones: a few bytes a row would be a whole row of cells."""
    from safeload.serve.inputs import parse_batch

    schema = {
        "kind": "dataframe",
        "columns": [{"name": f"c{i}", "dtype": "float64"} for i in range(2_000)],
    }
    full = json.dumps({f"c{i}": 1.0 for i in range(2_000)})
    body = ("[" + full + ", {}" * 9_999 + "]").encode()  # 53 kB: was 389 MB and 7 s of cells
    started = time.perf_counter()
    with pytest.raises(
        safeload.ContractError,
        match=r"9999 record\(s\) lack columns, the first is record 1 without \['c0', 'c1',",
    ):
        parse_batch(body, "application/json", schema, 10_000)
    assert time.perf_counter() - started < 5
    nulls = json.dumps({f"c{i}": None for i in range(2_000)})
    frame = parse_batch(f"[{full}, {nulls}]".encode(), "application/json", schema, 10)
    assert frame.shape == (2, 2_000) and frame.iloc[1].isna().all()


def test_a_record_without_a_column_is_a_422_naming_it(server: Server) -> None:
    rows = records(3)
    del rows[2]["income"]
    with server.client() as client:
        answer = client.post("/v1/models/churn/predict", json=rows)
        rows[2]["income"] = None
        nulled = client.post("/v1/models/churn/predict", json=rows)
    assert answer.status_code == 422, answer.text
    assert "record 2 without ['income']" in answer.json()["detail"]
    assert "send null for a missing value" in answer.json()["detail"]
    assert nulled.status_code in (200, 422) and "lack columns" not in nulled.text


def test_connections_past_the_limit_are_a_503_until_the_slow_ones_are_cut(store: Path) -> None:
    """Bodies are held while they arrive: the number of connections bounds that memory."""
    with serving(store, "--max-connections", "4", "--body-timeout", "3", tag="-limit") as small:
        host, port = small.url.removeprefix("http://").split(":")
        slow = [socket.create_connection((host, int(port)), timeout=30) for _ in range(4)]
        try:
            for sock in slow:
                sock.sendall(b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: t\r\n")
            time.sleep(0.5)
            with small.client() as client:
                refused = client.get("/healthz")
            assert refused.status_code == 503, refused.text
            deadline = time.monotonic() + 30
            while True:  # the head deadline closes the slow ones, and room is made
                with small.client() as client:
                    if client.get("/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "the slow connections were never cut"
                time.sleep(0.5)
        finally:
            for sock in slow:
                sock.close()
        assert_healthy(small)
