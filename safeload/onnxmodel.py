"""An ONNX artifact, loaded: an onnxruntime session built from the verified bytes.

This is the ONNX counterpart of :mod:`safeload._unpickle` (the quarantine): the one place that
hands model bytes to onnxruntime, and only bytes that passed the signature, every hash and the
static ONNX gate (:mod:`safeload.typegate.onnx`). The session is built from those bytes, never
from a path, with options that keep onnxruntime from reaching anything else:

* external initializers (which the gate already refused) would be resolved against a fresh,
  empty directory made for this session and removed right after, never the working directory;
* only the ONNX protobuf format is read (not ORT's flatbuffer format), only released opsets,
  only the CPU provider, and no custom operator library is ever registered;
* threads are bounded (``intra_op_num_threads`` at most 4, one inter-op thread);
* no graph optimization: onnxruntime's constant folding *runs* the graph's constant part
  while the session is built, up to 1 GiB per node, so an 839-byte graph of a few
  ``ConstantOfShape`` nodes took 13 GB and 90 s before any input (measured); unoptimized,
  nothing runs before ``predict``, and skl2onnx graphs (a few nodes) lose nothing measurable;
* every tensor a run allocates comes from one arena capped at
  ``ScanLimits.max_onnx_arena_bytes`` (shapes may come from the graph's constants: what a run
  asks for is capped, not predicted), and every run is stopped after ``ScanLimits.max_seconds``
  (a ``Loop`` of 2**60 iterations); either is a :class:`~safeload.errors.ContractError`.

:class:`OnnxModel` gives the session the methods of the scikit-learn model it was converted
from (``predict``, ``predict_proba`` when the graph has probabilities, ``transform``), taking
the same DataFrame or array, so that :class:`~safeload.LoadedArtifact`'s schema check and the
saved sample contract apply to it unchanged. onnxruntime is imported only when an ONNX
artifact is loaded.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from safeload.buffers import Buffer, byte_view
from safeload.errors import ContractError, MalformedArtifactError, OperationalError, shown
from safeload.typegate.limits import Deadline, ScanLimits

JSON = Any
MAX_THREADS = 4
# The numpy dtype each ONNX input type is fed with.
INPUT_DTYPES = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(string)": object,
}


_ARENA_LOCK = threading.Lock()
_arena_bytes: list[int] = []  # the cap of the arena this process registered, once


def _shared_arena(onnxruntime: Any, max_bytes: int) -> None:
    """Register, once per process, the capped CPU arena every safeload session allocates from.

    onnxruntime's CPU provider has no per-session memory cap, only an environment-wide
    allocator that sessions opt into (``session.use_env_allocators``); past its ``max_mem`` an
    allocation is a clean error instead of the machine's memory.
    """
    with _ARENA_LOCK:
        if _arena_bytes:
            return
        info = onnxruntime.OrtMemoryInfo(
            "Cpu",
            onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
            0,
            onnxruntime.OrtMemType.DEFAULT,
        )
        # max_mem, extend strategy (0: powers of two), initial chunk, max dead bytes (defaults)
        config = onnxruntime.OrtArenaCfg(max_bytes, 0, -1, -1)
        try:
            onnxruntime.create_and_register_allocator(info, config)
        except Exception as exc:  # another allocator is registered: its cap is unknown
            raise OperationalError(
                "safeload could not register its capped onnxruntime arena (another CPU "
                f"allocator is registered in this process?): {shown(str(exc))}"
            ) from exc
        _arena_bytes.append(max_bytes)


def open_session(
    payload: Buffer, deadline: Deadline | None = None, limits: ScanLimits | None = None
) -> Any:
    """An ``onnxruntime.InferenceSession`` over bytes that passed the whole gate (1 to 4).

    Only :mod:`safeload.loading` (and the save-time check of a conversion) may call this.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise OperationalError(
            'loading an ONNX artifact needs onnxruntime: pip install "safeload[onnx]"'
        ) from exc

    if deadline is not None:
        deadline.check("building the ONNX session")
    _shared_arena(onnxruntime, (limits or ScanLimits()).max_onnx_arena_bytes)
    options = onnxruntime.SessionOptions()
    # Nothing of the graph runs while the session is built (constant folding would).
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = min(MAX_THREADS, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4  # errors are raised, not printed
    options.enable_profiling = False
    options.add_session_config_entry("session.load_model_format", "ONNX")
    options.add_session_config_entry("session.allow_released_opsets_only", "1")
    data = byte_view(payload).tobytes()
    with tempfile.TemporaryDirectory(prefix="safeload-onnx-") as empty:
        # Defence in depth: external data (refused by the gate) would be looked for here.
        options.add_session_config_entry(
            "session.model_external_initializers_file_folder_path", empty
        )
        try:
            session = onnxruntime.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's own refusal: never a bare traceback
            raise MalformedArtifactError(
                f"onnxruntime could not build a session from the verified model.onnx: "
                f"{shown(str(exc))}"
            ) from exc
    if deadline is not None:
        deadline.check("building the ONNX session")
    return session


class _Watchdog:
    """One thread that stops overdue runs (``RunOptions.terminate``), for every session.

    A thread per run (``threading.Timer``) cost ~200 us a prediction, ten times a one-row run;
    this one wakes at least once a second, and is woken only for a run due before that.
    """

    def __init__(self) -> None:
        self._due: dict[int, tuple[float, Any]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._planned = 0.0  # when the thread will look next, at the latest

    def watch(self, options: Any, seconds: float) -> None:
        due = time.monotonic() + seconds
        with self._wake:
            self._due[id(options)] = (due, options)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="safeload-onnx-watchdog", daemon=True
                )
                self._thread.start()
            elif due < self._planned:
                self._wake.notify()

    def forget(self, options: Any) -> None:
        with self._wake:
            self._due.pop(id(options), None)

    def _loop(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for key, (due, options) in list(self._due.items()):
                    if due <= now:
                        options.terminate = True
                        del self._due[key]
                soonest = min((due for due, _ in self._due.values()), default=now + 1.0)
                self._planned = min(soonest, now + 1.0)
                self._wake.wait(max(self._planned - now, 0.001))


_WATCHDOG = _Watchdog()


def _type_of(node: Any) -> str:
    return str(node.type)


class OnnxModel:
    """A verified ONNX graph with the prediction methods of the model it was converted from.

    ``predict``, ``predict_proba`` and ``transform`` exist only if the artifact recorded them
    (``hasattr`` tells, as for a scikit-learn estimator). Input is a DataFrame (columns found
    by the names recorded at save) or a 2-D array (columns by position); output is a numpy
    array shaped as the scikit-learn model's was.

    Each run is stopped after ``max_seconds`` (the load's ``ScanLimits.max_seconds``, 60 s by
    default: set the attribute to serve larger batches) and draws its tensors from the capped
    arena; a run that fails either way, or that onnxruntime refuses, raises ``ContractError``.
    """

    def __init__(
        self,
        session: Any,
        spec: Mapping[str, JSON],
        schema: Mapping[str, JSON],
        max_seconds: float | None = None,
    ):
        self.session = session
        self.max_seconds = ScanLimits().max_seconds if max_seconds is None else max_seconds
        self._inputs: list[dict[str, Any]] = [dict(i) for i in spec["inputs"]]
        self._methods: dict[str, dict[str, Any]] = {
            str(k): dict(v) for k, v in spec["methods"].items()
        }
        self.opset: dict[str, int] = dict(spec["opset"])
        names = schema.get("feature_names")
        self.feature_names_in_ = None if names is None else np.asarray(names, dtype=object)
        n_features = schema.get("n_features_in")
        self.n_features_in_ = None if n_features is None else int(n_features)
        if "classes" in spec:
            self.classes_ = np.asarray(spec["classes"])
        self._check_graph()

    def _check_graph(self) -> None:
        """The recorded inputs and outputs must be the graph's own, or nothing is predicted."""
        graph_inputs = [(i.name, _type_of(i)) for i in self.session.get_inputs()]
        recorded = [(str(i["name"]), str(i["type"])) for i in self._inputs]
        if graph_inputs != recorded or any(t not in INPUT_DTYPES for _, t in recorded):
            raise MalformedArtifactError(
                f"the ONNX graph's inputs {shown(graph_inputs)} are not those recorded in "
                f"safeload.json {shown(recorded)}"
            )
        outputs = {o.name for o in self.session.get_outputs()}
        for method, how in self._methods.items():
            if how.get("output") not in outputs:
                raise MalformedArtifactError(
                    f"safeload.json maps {method} to output {shown(how.get('output'))}, which "
                    "the ONNX graph does not have"
                )

    @property
    def methods(self) -> tuple[str, ...]:
        """The prediction methods this graph answers (recorded at save)."""
        return tuple(self._methods)

    def __getattr__(self, name: str) -> Any:
        # Only the recorded methods exist, so hasattr(model, "predict_proba") answers truly.
        if name in ("predict", "predict_proba", "transform") and name in self.__dict__.get(
            "_methods", {}
        ):
            return lambda data: self._run(name, data)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _run(self, method: str, data: Any) -> Any:
        how = self._methods[method]
        (output,) = self._bounded_run(method, str(how["output"]), self._feeds(data))
        result = np.asarray(output)
        if how.get("ravel") and result.ndim == 2 and result.shape[1] == 1:
            result = result.ravel()
        # scikit-learn answers in float64; a float32 graph's answer is widened to match.
        return result.astype(np.float64) if result.dtype.kind == "f" else result

    def _bounded_run(self, method: str, output: str, feeds: dict[str, Any]) -> Any:
        """One run, stopped after ``max_seconds``; onnxruntime's failures become refusals."""
        import onnxruntime

        options = onnxruntime.RunOptions()
        options.log_severity_level = 4
        _WATCHDOG.watch(options, self.max_seconds)
        try:
            return self.session.run([output], feeds, options)
        except Exception as exc:  # a kernel's refusal, the arena's cap, the clock
            if options.terminate:
                raise ContractError(
                    f"the ONNX graph's {method} ran longer than {self.max_seconds:g} s "
                    "(ScanLimits.max_seconds): stopped"
                ) from None
            lines = str(exc).strip().splitlines()
            raise ContractError(
                f"onnxruntime could not run the graph's {method} on this input (a tensor "
                "beyond ScanLimits.max_onnx_arena_bytes, or an operator's refusal): "
                f"{shown(lines[-1] if lines else type(exc).__name__)}"
            ) from None
        finally:
            _WATCHDOG.forget(options)

    def _feeds(self, data: Any) -> dict[str, Any]:
        """The graph's inputs from a DataFrame or a 2-D array, cast to the graph's types."""
        frame = type(data).__name__ == "DataFrame" and hasattr(data, "columns")
        if len(self._inputs) == 1 and self._inputs[0].get("column") is None:
            spec = self._inputs[0]
            if frame and self.feature_names_in_ is not None:
                missing = [c for c in self.feature_names_in_ if c not in data.columns]
                if missing:
                    raise ContractError(f"prediction input lacks the columns {shown(missing)}")
                data = data[list(self.feature_names_in_)]
            array = np.asarray(data)
            if array.ndim != 2:
                raise ContractError(f"expected 2-D input, got shape {array.shape}")
            return {str(spec["name"]): self._cast(array, spec)}
        feeds: dict[str, Any] = {}
        if frame:
            for spec in self._inputs:
                column = str(spec["column"])
                if column not in data.columns:
                    raise ContractError(f"prediction input lacks the column {shown(column)}")
                feeds[str(spec["name"])] = self._cast(data[[column]].to_numpy(), spec)
            return feeds
        array = np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(self._inputs):
            raise ContractError(
                f"expected a DataFrame, or a 2-D array of {len(self._inputs)} columns; got "
                f"shape {array.shape}"
            )
        for index, spec in enumerate(self._inputs):
            feeds[str(spec["name"])] = self._cast(array[:, index : index + 1], spec)
        return feeds

    @staticmethod
    def _cast(array: np.ndarray, spec: Mapping[str, JSON]) -> np.ndarray:
        dtype = INPUT_DTYPES[str(spec["type"])]
        try:
            if dtype is object:
                return np.asarray(array).astype(str).astype(object)
            return np.ascontiguousarray(array, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ContractError(
                f"input for {shown(spec.get('column') or spec['name'])} cannot be read as "
                f"{spec['type']}: {shown(str(exc))}"
            ) from exc

    def __repr__(self) -> str:
        return f"OnnxModel(methods={sorted(self._methods)}, opset={self.opset})"


def load_onnx_verified(
    payload: Buffer,
    metadata: Mapping[str, JSON],
    deadline: Deadline | None = None,
    limits: ScanLimits | None = None,
) -> OnnxModel:
    """The model of an ONNX artifact that passed steps 1 to 4 (from its verified bytes)."""
    spec = metadata.get("onnx")
    if not isinstance(spec, dict):
        raise MalformedArtifactError(
            "safeload.json of an ONNX artifact records no 'onnx' section (inputs and methods)"
        )
    schema = metadata.get("schema") or {}
    seconds = deadline.seconds if deadline is not None else None
    return OnnxModel(open_session(payload, deadline, limits), spec, schema, max_seconds=seconds)
