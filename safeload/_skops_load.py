"""skops' half of the quarantine: a scanned skops file built once, arrays from the verified bytes.

Only :func:`safeload._unpickle.load_skops_verified` calls this, with the plan the type gate
made (:class:`safeload.typegate.skops.SkopsPlan`). ``skops.io.load`` would parse
``schema.json`` again, build its node tree reading every array into a ``BytesIO``, audit the
tree, then copy each array out of that ``BytesIO`` with ``np.load``. Here skops builds its
tree from the document the gate's walk and skops' own audit already ran on, with the list that
audit asked for, and constructs it; the arrays of stored entries are numpy views on the
verified buffer (a copy only when misaligned), read by the same header parser ``np.load``
uses.

Skipped against ``skops.io.load``, and why that proves nothing less:

* the second audit (``audit_tree``): it would ask whether the tree built from this document
  with ``trusted=plan.trusted`` names a type outside skops' defaults and that list. The gate's
  audit built the tree of the very same document object with ``trusted=None`` and
  ``plan.trusted`` *is* what it found: the answer is no by construction;
* building that tree again: the tree constructed is the one the gate's audit walked (its
  ``trusted`` lists are only read by the audit, never by ``construct``), taken once from the
  plan, over the same buffer and the same array markers; a plan used a second time, or with
  another buffer or other arrays, builds a fresh tree of ``plan.document`` as before;
* zip CRCs of stored entries: the signed manifest hash already covered every byte.
"""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from safeload.buffers import byte_view
from safeload.errors import MalformedArtifactError
from safeload.typegate.npyheader import read_header
from safeload.typegate.skops import ARRAY_MARK, SkopsPlan, SkopsSource
from safeload.typegate.skops_schema import SKOPS_PROTOCOL


def construct(buffer: bytes | bytearray | memoryview, plan: SkopsPlan) -> Any:
    """Construct the tree the gate audited (or a fresh one of ``plan.document``), arrays filled."""
    from skops.io._audit import get_tree
    from skops.io._utils import LoadContext

    view = byte_view(buffer)
    audited = plan.take_audited()
    if audited is not None and _same_source(audited[1], view, plan):
        tree, source = audited
    else:
        source = SkopsSource(view, plan.spans, plan.arrays)
        context = LoadContext(src=source, protocol=SKOPS_PROTOCOL)
        tree = get_tree(plan.document, context, trusted=list(plan.trusted))
    filled = _fill_arrays(tree, view, plan)
    if filled != source.marked:
        # A marker went to a reader other than a numpy.ndarray node: never construct.
        raise MalformedArtifactError(
            "skops read an array entry in a way the gate did not expect: refused"
        )
    return tree.construct()


def _same_source(source: SkopsSource, view: memoryview, plan: SkopsPlan) -> bool:
    """Whether the audited tree read exactly what this construction would: buffer and marks."""
    return source.view is view and source.spans is plan.spans and source.arrays == plan.arrays


def _fill_arrays(tree: Any, view: memoryview, plan: SkopsPlan) -> collections.Counter[str]:
    """Give each marked ``NdArrayNode`` its array (skops' construct cache), counted by entry."""
    from skops.io._audit import Node
    from skops.io._numpy import NdArrayNode

    filled: collections.Counter[str] = collections.Counter()
    seen: set[int] = set()
    pending: list[Any] = [tree]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if type(node) is NdArrayNode and node.type == "numpy":
            with node.buffer.getbuffer() as held:
                head = bytes(held[: len(ARRAY_MARK) + 256])
            if head.startswith(ARRAY_MARK):
                name = head[len(ARRAY_MARK) :].decode("ascii", "replace")
                if name not in plan.arrays or (node.module_name, node.class_name) != (
                    "numpy",
                    "ndarray",
                ):
                    raise MalformedArtifactError("a skops array node reads an unexpected entry")
                start, end = plan.spans[name]
                node._constructed = npy_array(view[start:end])
                filled[name] += 1
        for child in node.children.values():
            if isinstance(child, Node):
                pending.append(child)
            elif isinstance(child, list):
                pending.extend(c for c in child if isinstance(c, Node))
            elif isinstance(child, dict):
                pending.extend(c for c in child.values() if isinstance(c, Node))
    return filled


def npy_array(entry: memoryview) -> np.ndarray[Any, Any]:
    """The array an ``.npy`` entry holds, as a view on ``entry`` (copied only if misaligned).

    The header is read as ``np.load`` reads it (:mod:`safeload.typegate.npyheader`); object
    arrays are refused, as ``np.load(allow_pickle=False)`` refuses them, and the data must fill
    the entry exactly.
    """
    try:
        shape, fortran, dtype, offset = read_header(entry)
    except ValueError as exc:
        raise MalformedArtifactError(f"a skops array entry has an odd .npy header: {exc}") from exc
    if dtype.hasobject:
        raise MalformedArtifactError("a skops array entry holds Python objects: refused")
    count = math.prod(shape)
    if count * dtype.itemsize != len(entry) - offset:
        raise MalformedArtifactError(
            f"a skops array entry holds {len(entry) - offset} bytes of data, but its header "
            f"says {count} items of {dtype.itemsize}: refused"
        )
    if count == 0:
        return np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    flat = np.frombuffer(entry, dtype=dtype, count=count, offset=offset)
    array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    if not array.flags.aligned:
        array = array.copy(order="K")
    return array
