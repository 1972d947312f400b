"""The HTTP API of ``safeload serve`` (FastAPI), and running it under uvicorn.

Requests are read by hand rather than by a pydantic model: the body is counted as it arrives
(Content-Length first, then the bytes received) and refused past ``max_body`` before it is
parsed, and every way a body can be wrong maps to a 4xx that says what is wrong
(:mod:`safeload.serve.inputs`). A 500 means a fault of the server, never of the input.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from safeload.drift import DriftAccumulator
from safeload.errors import ContractError, shown
from safeload.serve import page
from safeload.serve.inputs import BadRequest, media_type, parse_batch
from safeload.serve.registry import ModelRegistry, methods_of

MAX_BODY = 1024 * 1024
MAX_ROWS = 10_000
BODY_TIMEOUT = 30.0
MAX_CONNECTIONS = 256


@dataclass(frozen=True)
class Limits:
    """What one request may cost: bytes of body, rows of batch, seconds to send the body."""

    max_body: int = MAX_BODY
    max_rows: int = MAX_ROWS
    body_timeout: float = BODY_TIMEOUT


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


async def _read_body(request: Request, max_body: int, timeout: float) -> bytes:
    """The body, refused with a 413 past ``max_body``, with a 408 past ``timeout`` seconds.

    The deadline is on the whole body, not on each read: a client that sends one byte at a
    time (or declares a length it never sends) would otherwise hold its connection forever.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _receive(request, max_body)
    except TimeoutError:
        raise BadRequest(
            f"the body did not arrive within {timeout:g} seconds (--body-timeout)", 408
        ) from None


async def _receive(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("the Content-Length header is not a number")
        if int(declared) > max_body:
            raise BadRequest(
                f"the body has {declared} bytes, more than {max_body} (--max-body)", 413
            )
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body:  # a chunked body, or one longer than it declared
            raise BadRequest(f"the body is longer than {max_body} bytes (--max-body)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    registry: ModelRegistry,
    *,
    limits: Limits | None = None,
    admin_token: str | None = None,
    reload_on_sighup: bool = True,
) -> FastAPI:
    """The application; admin routes exist only when ``admin_token`` is given."""
    bounds = limits or Limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if reload_on_sighup:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_all()))
        yield

    async def _reload_all() -> None:
        for result in await run_in_threadpool(registry.reload_all):
            _log_reload(result)

    app = FastAPI(
        title="safeload serve",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN: not on this server
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        served = [e.name for e in registry.served()]
        refused = [e.name for e in registry.entries() if e.served is None]
        ready = bool(served)
        return JSONResponse(
            {"ready": ready, "served": served, "refused": refused},
            status_code=200 if ready else 503,
        )

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"models": [e.provenance() for e in registry.entries()]}

    @app.get("/v1/models/{name}")
    def model(name: str) -> JSONResponse:
        entry = registry.get(name)
        if entry is None:
            return _unknown(name)
        return JSONResponse(entry.provenance())

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        docs = [e.provenance() for e in registry.entries()]
        body = page.render(docs, ready=bool(registry.served()))
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    def _unknown(name: str) -> JSONResponse:
        known = ", ".join(e.name for e in registry.entries()[:20]) or "none"
        return _error(404, f"no model {shown(name)} on this server (models: {known})")

    async def _predict(name: str, method: str, request: Request) -> Response:
        entry = registry.get(name)
        if entry is None:
            return _unknown(name)
        artifact = entry.served
        if artifact is None:
            return _error(
                503,
                f"model {shown(name)} is not served: its load was refused",
                refused=entry.refused,
            )
        if method not in methods_of(artifact):
            return _error(404, f"model {shown(name)} has no {method}")
        try:
            kind = media_type(request.headers.get("content-type"))
            body = await _read_body(request, bounds.max_body, bounds.body_timeout)
            return await run_in_threadpool(_run, artifact, method, kind, body, entry.drift)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        except ContractError as exc:
            return _error(422, str(exc), error="ContractError")

    def _run(
        artifact: Any, method: str, kind: str, body: bytes, drift: DriftAccumulator | None
    ) -> Response:
        batch = parse_batch(body, kind, artifact.schema, bounds.max_rows)
        try:
            result = getattr(artifact, method)(batch)
        except ContractError:
            raise
        except (ValueError, TypeError) as exc:  # e.g. NaN where the model takes none
            return _error(422, f"the model cannot {method} this input: {shown(str(exc))}")
        if drift is not None:
            _count_drift(drift, batch)
        version = str(artifact.metadata.get("version"))
        doc: dict[str, Any] = {"model": artifact.metadata.get("name"), "version": version}
        if method == "predict_proba":
            doc["classes"] = _classes(artifact.model)
            doc["probabilities"] = result.tolist()
        else:
            doc["predictions"] = result.tolist()
        try:  # JSON has no NaN or infinity: a regressor fed 1.7e308 may answer either
            body = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            return _error(422, f"the model's {method} output cannot be sent as JSON: {exc}")
        return Response(body, media_type="application/json")

    @app.get("/v1/models/{name}/drift")
    def drift_report(name: str) -> JSONResponse:
        entry = registry.get(name)
        if entry is None:
            return _unknown(name)
        if entry.served is None:
            return _error(503, f"model {shown(name)} is not served: its load was refused")
        if entry.drift is None:
            return _error(
                404,
                f"model {shown(name)} {entry.version} records no training statistics: save "
                "it with training_data to measure drift",
            )
        doc = {"model": name, "version": entry.version, "since": entry.loaded_at}
        return JSONResponse({**doc, **entry.drift.report().to_dict()})

    @app.post("/v1/models/{name}/predict")
    async def predict(name: str, request: Request) -> Response:
        return await _predict(name, "predict", request)

    @app.post("/v1/models/{name}/predict_proba")
    async def predict_proba(name: str, request: Request) -> Response:
        return await _predict(name, "predict_proba", request)

    if admin_token is not None:
        _admin_routes(app, registry, admin_token)
    return app


def _count_drift(drift: DriftAccumulator, batch: Any) -> None:
    """Count a scored batch into the running drift report; a failure here never fails a request."""
    try:
        drift.add(batch)
    except Exception as exc:
        print(f"safeload serve: drift not counted: {type(exc).__name__}", file=sys.stderr)


def _classes(model: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]


def _admin_routes(app: FastAPI, registry: ModelRegistry, token: str) -> None:
    """Reload routes, bound to the token: compared in constant time, as bytes."""
    expected = f"Bearer {token}".encode()

    def authorized(request: Request) -> JSONResponse | None:
        given = request.headers.get("authorization")
        if given is None:
            return JSONResponse(
                {"detail": "admin routes need Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            return _error(403, "the admin token is wrong")
        return None

    async def run_admin(action: Callable[[], Any]) -> Response:
        result = await run_in_threadpool(action)
        for one in result if isinstance(result, list) else [result]:
            _log_reload(one)
        return JSONResponse(result)

    @app.post("/v1/models/{name}/reload")
    async def reload(name: str, request: Request) -> Response:
        denied = authorized(request)
        if denied is not None:
            return denied
        if registry.get(name) is None and name not in registry.store.names():
            return _error(404, f"no model {shown(name)} in the store")
        return await run_admin(lambda: registry.reload(name))

    @app.post("/v1/reload")
    async def reload_all(request: Request) -> Response:
        denied = authorized(request)
        return denied or await run_admin(registry.reload_all)


def _log_reload(result: dict[str, Any]) -> None:
    if result["reloaded"]:
        line = f"safeload serve: {result['name']}: serving {result['version']}"
    else:
        line = (
            f"safeload serve: {result['name']}: refused {result['attempted']}, still serving "
            f"{result['version'] or 'nothing'}: {result['refused']}"
        )
    print(line, file=sys.stderr, flush=True)


def run(
    app: FastAPI,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    head_timeout: float = BODY_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's handlers); SIGHUP reloads (the app's).

    Each request head must arrive within ``head_timeout`` seconds (:mod:`.transport`), and past
    ``max_connections`` open connections a request is answered 503 at once: bodies are held in
    memory while they arrive, so this and ``max_body`` bound what clients can make it hold.
    """
    import uvicorn

    from safeload.serve.transport import protocol

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        http=protocol(head_timeout),
        limit_concurrency=max_connections,
    )
