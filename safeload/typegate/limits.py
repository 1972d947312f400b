"""How much work and memory one type scan may spend: the one source of limits for every format.

Every limit turns hostile input into a reported problem instead of a hang or a crash. The same
:class:`ScanLimits` bound a joblib stream (opcodes, stack, memo, hashing, decompression) and a
skops zip (entries, expanded size, ratio), whoever calls the gate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from safeload.errors import MalformedArtifactError

_GIB = 1 << 30
_MIB = 1 << 20


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on the work and memory a scan (and decompression) may spend on one file.

    Every limit turns hostile input into a reported problem instead of a hang or a crash.
    The defaults accept multi-gigabyte models; lower them for untrusted uploads.

    Attributes:
        max_opcodes: opcodes followed in total (nested and trailing pickles included).
        max_stack_depth: items on the symbolic stack, marks included (checked every few
            opcodes, so it may be passed by a small fraction before the scan stops).
        max_memo: entries in one stream's memo.
        max_nesting: object-dtype arrays nested in object-dtype arrays (each is a pickle).
        max_depth: containers (tuples, lists, dicts, sets) nested in one another. Deep values
            crash the loader's C code (``hash`` of a deep tuple recurses without a guard) and
            break ``repr``, ``copy`` and scikit-learn code; no model nests this deep.
        max_hash_work: steps the loader may spend hashing dict keys and set members, over the
            whole file (a tuple costs one step per item, expanded: memo-shared tuple DAGs
            make hashing exponential), and comparing keys whose hashes collide (each
            comparison costs the product of both keys' widths, fully expanded: frozensets cache
            their hash, not their equality, so two equal frozenset DAGs compare in
            ``2**depth`` steps; and ints that hash alike make each insertion compare with every
            key before it). A legitimate file spends about one step per key.
        max_array_bytes: payload one joblib array may declare; also never more than the bytes
            actually present in the file.
        max_decompressed_bytes: output of decompression, checked while decompressing.
        max_ratio: decompressed size over the compressed bytes read so far, enforced
            continuously once the output passes ``ratio_floor_bytes`` (small files may
            legitimately compress very well). Real models compress less than 20x (measured at
            every level of every joblib compressor); zlib reaches ~1032x and lz4 ~255x on runs
            of zeros, so a bomb stops after about ``ratio_floor_bytes`` of output.
        ratio_floor_bytes: output size below which ``max_ratio`` is not enforced.
        max_seconds: wall-clock time for one file's whole gate: the scan, the deserialization
            and the structural validation share one :class:`Deadline`, started before the scan
            (asked every few thousand opcodes, calls or objects).
        max_string_bytes: longest string whose value the scanner tracks; a longer string used
            as a global name is refused as unresolvable.
        max_zip_entries: entries in a skops (zip) file.
        max_skops_schema_bytes: size of a skops file's ``schema.json``, checked before it is
            read or parsed.
        max_skops_nodes: nodes skops' walks visit in a skops file, shared nodes counted at
            every place they are used (real models: a few thousand per estimator).
        max_output_features: widest row a fitted model may make predict produce or hold per
            sample (output columns, or a per-sample intermediate such as PolynomialCountSketch's
            ``degree * n_components``), derived from its fitted state by structural validation;
            the input width (``n_features_in_``) of the transformers it checks, too.
            A degree or ``n_components`` is a few bytes in the file but sizes every later
            prediction. 2**24 is 16x scikit-learn's widest default (HashingVectorizer's 2**20)
            and above real vocabularies; a dense float64 row that wide is already 128 MiB.
        max_work_per_value: steps a fitted model's settings (not its input) may make predict
            spend on one input value: the characters copied per text position for n-gram
            lengths ``min_n..max_n`` (their sum), PolynomialFeatures' degree passes. Real
            settings cost tens (n-grams up to 44 characters long, degrees up to 1024, fit).
        max_predict_iterations: solver iterations a model's settings may make each
            ``transform`` run (NMF's ``_transform_max_iter``, LDA's ``max_doc_update_iter``,
            dictionary learning's ``transform_max_iter``). Defaults are 100 to 1,000; a
            setting of 10**12 is a model that never answers.
        max_onnx_bytes: size of an ONNX file, checked before it is parsed (protobuf's own
            ceiling is 2 GiB).
        max_onnx_nodes: nodes of an ONNX model, subgraphs included (skl2onnx writes a few per
            estimator: a whole forest is one node). onnxruntime builds a session in about
            0.1 ms and 3.5 KB per node, uninterruptibly (200,000 nodes: 21 s, 700 MB,
            measured): 50,000 keeps that near 5 s.
        max_onnx_depth: subgraphs (``If``/``Loop``/``Scan`` bodies) nested in one another.
        max_booster_bytes: size of one model blob a pack's booster hands to its library's
            native parser (LightGBM's model text, XGBoost's UBJSON, CatBoost's binary model),
            checked with the blob's form before that parser runs (see
            :mod:`safeload.typegate.boosters`).
        max_onnx_messages: protobuf messages (nodes, tensors, attributes, ...) in an ONNX
            file, counted on the wire before the file is parsed: an empty message is 2 bytes
            on the wire and about 100 in memory (a 38 MB file of them parsed into 3.4 GB).
            skl2onnx writes hundreds; a whole forest is one node of a few dozen attributes.
        max_onnx_parse_bytes: memory protobuf may take to parse an ONNX file, estimated on the
            wire before parsing, from above: an empty repeated string is 2 bytes in the file and
            ~40 parsed, a repeated int 2 and ~20 (measured). Like ``max_decompressed_bytes``:
            a 21 MB forest of 556,000 nodes is estimated at ~0.2 GB.
        max_onnx_arena_bytes: tensor memory onnxruntime's arena may hold for all safeload
            ONNX sessions of a process (one shared arena, sized by the first ONNX load): a
            graph's shapes can come from its constants (``ConstantOfShape``, ``Expand``,
            ``Tile``, broadcasting), so what a run allocates is capped, not predicted.
    """

    max_opcodes: int = 50_000_000
    max_stack_depth: int = 1_000_000
    max_memo: int = 10_000_000
    max_nesting: int = 32
    max_depth: int = 1000
    max_hash_work: int = 50_000_000
    max_array_bytes: int = 64 * _GIB
    max_decompressed_bytes: int = 16 * _GIB
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 16 * _MIB
    max_seconds: float = 60.0
    max_string_bytes: int = 64 * 1024
    max_zip_entries: int = 100_000
    max_skops_schema_bytes: int = 256 * _MIB
    max_skops_nodes: int = 1_000_000
    max_output_features: int = 1 << 24
    max_work_per_value: int = 1024
    max_predict_iterations: int = 100_000
    max_onnx_bytes: int = 2 * _GIB - 1
    max_onnx_nodes: int = 50_000
    max_onnx_depth: int = 16
    max_booster_bytes: int = 4 * _GIB
    max_onnx_messages: int = 1_000_000
    max_onnx_parse_bytes: int = 16 * _GIB
    max_onnx_arena_bytes: int = 4 * _GIB


class Deadline:
    """One clock for the whole gate: the scan, the unpickler and the validator of one model.

    Started once from ``ScanLimits.max_seconds`` and handed from step to step, so a file that
    spends most of its budget in one wall does not get a fresh budget in the next.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def passed(self) -> bool:
        """Whether the time is up (cheap enough to ask every few thousand steps)."""
        return time.monotonic() > self.expires

    def check(self, stage: str) -> None:
        """Refuse if the time is up, naming the step that was running."""
        if self.passed():
            raise MalformedArtifactError(
                f"{stage} went past the gate's deadline of {self.seconds:g} s "
                "(ScanLimits.max_seconds, one budget for scan, deserialization and "
                "validation): refused. If the model is genuine and this large, raise that limit."
            )
