"""One handler per pickle opcode, following ``pickle._Unpickler`` line by line."""

from __future__ import annotations

import codecs
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from safeload.typegate._symbols import (
    _BIG_INT,
    _BYTES,
    _KEEP_ITEMS,
    _LONG_STR,
    _MAX_NUMBER_LINE,
    _OBJ,
    _SIZE_CAP,
    _UNRESOLVED,
    _any_tainted,
    _Dict,
    _Dtype,
    _List,
    _measure,
    _Set,
    _shape,
    _Stopped,
    _tainted,
    _Tuple,
)

if TYPE_CHECKING:
    from safeload.typegate._stream import _Stream

_Handler = Callable[["_Stream"], None]
DISPATCH: list[_Handler | None] = [None] * 256


def _op(code: bytes) -> Callable[[_Handler], _Handler]:
    def register(fn: _Handler) -> _Handler:
        DISPATCH[code[0]] = fn
        return fn

    return register


@_op(b"\x80")  # PROTO
def _proto(s: _Stream) -> None:
    version = s.buf[s.take(1)]
    if version > 5:
        s.fatal(f"pickle protocol {version} is higher than 5, the highest that exists")
    s.proto = version
    if version < 3:
        s.scan.slow(f"pickle protocol {version} (Python 2 names are translated below 3)")


@_op(b"\x95")  # FRAME
def _frame(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if s.in_frame and s.p != s.end:
        s.fatal("a new frame starts before the current one ends")
    if size > sys.maxsize or s.p + size > s.n:
        s.fatal(f"a frame of {size} bytes runs past the end of the stream")
    s.in_frame = True
    s.end = s.p + size


@_op(b".")  # STOP
def _stop(s: _Stream) -> None:
    s.pop()
    resume = s.p
    if s.in_frame and s.p < s.end:
        s.problem(
            f"{s.end - s.p} byte(s) after STOP inside the last frame, which the loader would "
            "silently skip"
        )
        resume = s.end
    raise _Stopped(resume)


@_op(b"(")  # MARK
def _mark(s: _Stream) -> None:
    s.meta.append(s.stack)
    s.meta_items += len(s.stack)
    s.stack = []


@_op(b"N")
def _none(s: _Stream) -> None:
    s.stack.append(None)


@_op(b"\x88")
def _true(s: _Stream) -> None:
    s.stack.append(True)


@_op(b"\x89")
def _false(s: _Stream) -> None:
    s.stack.append(False)


@_op(b"I")
def _int(s: _Stream) -> None:
    data = s.line_bytes(_MAX_NUMBER_LINE)
    if data == b"00":
        s.stack.append(False)
    elif data == b"01":
        s.stack.append(True)
    else:
        try:
            s.push(int(data, 0))
        except ValueError:
            s.fatal("INT argument is not a number")


@_op(b"J")
def _binint(s: _Stream) -> None:
    s.stack.append(struct.unpack_from("<i", s.buf, s.take(4))[0])


# _Stream.run runs this opcode inline (the commonest in models): keep both in step.
@_op(b"K")
def _binint1(s: _Stream) -> None:
    s.push(s.buf[s.take(1)])


@_op(b"M")
def _binint2(s: _Stream) -> None:
    s.stack.append(struct.unpack_from("<H", s.buf, s.take(2))[0])


@_op(b"L")
def _long(s: _Stream) -> None:
    data = s.line_bytes(_MAX_NUMBER_LINE)
    if data.endswith(b"L"):
        data = data[:-1]
    try:
        s.push(int(data, 0))
    except ValueError:
        s.fatal("LONG argument is not a number")


def _decode_long(s: _Stream, size: int) -> None:
    start = s.take(size)
    if size > 64:
        s.push(_BIG_INT)
    else:
        s.push(int.from_bytes(s.buf[start : start + size], "little", signed=True))


@_op(b"\x8a")
def _long1(s: _Stream) -> None:
    _decode_long(s, s.buf[s.take(1)])


@_op(b"\x8b")
def _long4(s: _Stream) -> None:
    (size,) = struct.unpack_from("<i", s.buf, s.take(4))
    if size < 0:
        s.fatal("LONG4 has a negative byte count")
    _decode_long(s, size)


@_op(b"F")
def _float(s: _Stream) -> None:
    try:
        s.push(float(s.line_bytes(_MAX_NUMBER_LINE)))
    except ValueError:
        s.fatal("FLOAT argument is not a number")


@_op(b"G")
def _binfloat(s: _Stream) -> None:
    s.stack.append(struct.unpack_from(">d", s.buf, s.take(8))[0])


@_op(b"S")
def _string(s: _Stream) -> None:
    start, stop = s.line()
    buf = s.buf
    if stop - start < 2 or buf[start] != buf[stop - 1] or buf[start] not in b"\"'":
        s.fatal("the STRING argument must be quoted")
    if stop - start > s.scan.limits.max_string_bytes:
        s.push(_LONG_STR)
        return
    try:
        s.push(codecs.escape_decode(bytes(buf[start + 1 : stop - 1]))[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        s.fatal("the STRING argument does not decode as the unpickler requires")


def _counted_string(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.text(start, start + size, "ascii"))


@_op(b"T")
def _binstring(s: _Stream) -> None:
    (size,) = struct.unpack_from("<i", s.buf, s.take(4))
    if size < 0:
        s.fatal("BINSTRING has a negative byte count")
    _counted_string(s, size)


@_op(b"U")
def _short_binstring(s: _Stream) -> None:
    _counted_string(s, s.buf[s.take(1)])


def _counted_unicode(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.text(start, start + size, "utf-8"))


@_op(b"V")
def _unicode(s: _Stream) -> None:
    start, stop = s.line()
    if stop - start > s.scan.limits.max_string_bytes:
        s.push(_LONG_STR)
        return
    try:
        s.push(str(s.buf[start:stop], "raw-unicode-escape"))
    except UnicodeDecodeError:
        s.fatal("the UNICODE argument does not decode")


@_op(b"X")
def _binunicode(s: _Stream) -> None:
    _counted_unicode(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"\x8c")
def _short_binunicode(s: _Stream) -> None:
    _counted_unicode(s, s.buf[s.take(1)])


@_op(b"\x8d")
def _binunicode8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BINUNICODE8 is larger than any buffer")
    _counted_unicode(s, size)


def _counted_bytes(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.raw(start, start + size))


@_op(b"B")
def _binbytes(s: _Stream) -> None:
    _counted_bytes(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"C")
def _short_binbytes(s: _Stream) -> None:
    _counted_bytes(s, s.buf[s.take(1)])


@_op(b"\x8e")
def _binbytes8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BINBYTES8 is larger than any buffer")
    _counted_bytes(s, size)


@_op(b"\x96")
def _bytearray8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BYTEARRAY8 is larger than any buffer")
    s.take(size)
    s.push(_BYTES)


@_op(b"\x97")
def _next_buffer(s: _Stream) -> None:
    s.problem("the stream asks for an out-of-band buffer, which safeload never provides")
    s.push(_OBJ)


@_op(b"\x98")
def _readonly_buffer(s: _Stream) -> None:
    s.stack[-1]  # the loader reads it (and fails on an empty stack)


@_op(b")")
def _empty_tuple(s: _Stream) -> None:
    s.stack.append(_Tuple((), False))


@_op(b"t")
def _tuple(s: _Stream) -> None:
    items = s.pop_mark()
    s.push(s.tuple_of(items))


@_op(b"\x85")
def _tuple1(s: _Stream) -> None:
    s.stack[-1] = s.tuple_of(s.stack[-1:])


@_op(b"\x86")
def _tuple2(s: _Stream) -> None:
    stack = s.stack
    stack[-2]  # IndexError on a short segment, as in the loader
    stack[-2:] = [s.tuple_of(stack[-2:])]


@_op(b"\x87")
def _tuple3(s: _Stream) -> None:
    stack = s.stack
    stack[-3]
    stack[-3:] = [s.tuple_of(stack[-3:])]


@_op(b"]")
def _empty_list(s: _Stream) -> None:
    s.stack.append(_List([], False))


@_op(b"l")
def _list(s: _Stream) -> None:
    items = s.pop_mark()
    kept = items if len(items) <= _KEEP_ITEMS else None
    tainted, depth, size = _measure(items)
    if depth > s.max_depth:
        s.too_deep()
    made = _List(kept, tainted, depth, size)
    _shape(made, items)
    s.push(made)


@_op(b"}")
def _empty_dict(s: _Stream) -> None:
    s.stack.append(_Dict())


@_op(b"d")
def _dict(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    items = s.pop_mark()
    if len(items) % 2:
        s.fatal("DICT has a key without a value")
    target = _Dict()
    s.setitems(target, items)
    s.push(target)


@_op(b"\x8f")
def _empty_set(s: _Stream) -> None:
    s.stack.append(_Set(False, False))


@_op(b"\x91")
def _frozenset(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    items = s.pop_mark()
    s.hashed(items)
    tainted, depth, _ = _measure(items)
    if depth > s.max_depth:
        s.too_deep()
    made = _Set(tainted, True, depth, min(1 + len(items), _SIZE_CAP))
    _shape(made, items)
    s.push(made)


@_op(b"\x90")
def _additems(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    items = s.pop_mark()
    target = s.stack[-1]
    if type(target) is _Set and not target.frozen:
        s.hashed(items, target.hashes)
        s.grow(target, items)
        return
    # Anything else has its ``add`` called, looked up on the instance (a shadowing attribute,
    # or a class's ``__getattr__``): only a set made by EMPTY_SET or set() may be added to.
    s.problem(
        "ADDITEMS to something other than a set: the loader would call that object's add, "
        "looked up on the instance, with the file's items"
    )
    s.hashed(items)
    if _any_tainted(items) or _tainted(target):
        s.desync("added to a container")


@_op(b"a")
def _append(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    value = s.pop()
    s.extend(s.stack[-1], [value])


@_op(b"e")
def _appends(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    items = s.pop_mark()
    s.extend(s.stack[-1], items)


@_op(b"s")
def _setitem(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    value = s.pop()
    key = s.pop()
    s.setitems(s.stack[-1], [key, value])


@_op(b"u")
def _setitems(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    items = s.pop_mark()
    s.setitems(s.stack[-1], items)


@_op(b"0")
def _pop(s: _Stream) -> None:
    if s.stack:
        s.stack.pop()
    else:
        s.pop_mark()  # pickle._Unpickler discards the MARK itself on an empty segment


@_op(b"1")
def _pop_mark(s: _Stream) -> None:
    s.pop_mark()


@_op(b"2")
def _dup(s: _Stream) -> None:
    value = s.stack[-1]
    s.push(value)
    if type(value) is _Dtype:
        s.scan.gets.append(s.p)  # the fast path marks it used (fastplan)


def _get(s: _Stream, index: int) -> None:
    value = s.memo[index]
    s.push(value)
    if type(value) is _Dtype:
        s.scan.gets.append(s.p)  # the fast path marks it used (fastplan)


@_op(b"g")
def _get_text(s: _Stream) -> None:
    try:
        index = int(s.line_bytes(_MAX_NUMBER_LINE))
    except ValueError:
        s.fatal("GET argument is not a number")
    _get(s, index)


# _Stream.run runs this opcode inline (the commonest in models): keep both in step.
@_op(b"h")
def _binget(s: _Stream) -> None:
    _get(s, s.buf[s.take(1)])


@_op(b"j")
def _long_binget(s: _Stream) -> None:
    _get(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"p")
def _put(s: _Stream) -> None:
    try:
        index = int(s.line_bytes(_MAX_NUMBER_LINE))
    except ValueError:
        s.fatal("PUT argument is not a number")
    if index < 0:
        s.fatal("PUT has a negative index")
    s.memoize(index)


@_op(b"q")
def _binput(s: _Stream) -> None:
    s.memoize(s.buf[s.take(1)])


@_op(b"r")
def _long_binput(s: _Stream) -> None:
    s.memoize(struct.unpack_from("<I", s.buf, s.take(4))[0])


# _Stream.run runs this opcode inline (the commonest in models): keep both in step.
@_op(b"\x94")
def _memoize(s: _Stream) -> None:
    s.memoize(len(s.memo))


def _global_line(s: _Stream, encoding: str) -> str:
    start, stop = s.line()
    if stop - start > s.scan.limits.max_string_bytes:
        s.fatal(f"a global name longer than {s.scan.limits.max_string_bytes} bytes")
    try:
        return str(s.buf[start:stop], encoding)
    except UnicodeDecodeError:
        s.fatal("a global name does not decode as the unpickler requires")


@_op(b"c")
def _global(s: _Stream) -> None:
    module = _global_line(s, "utf-8")
    name = _global_line(s, "utf-8")
    s.push(s.global_(module, name))


@_op(b"\x93")
def _stack_global(s: _Stream) -> None:
    name = s.pop()
    module = s.pop()
    s.push(s.global_(module, name))


@_op(b"i")
def _inst(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    module = _global_line(s, "ascii")
    name = _global_line(s, "ascii")
    klass = s.global_(module, name)
    s.scan.slow("INST")
    s.push(s.instantiate(klass, s.pop_mark(), "INST"))


@_op(b"o")
def _obj(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    args = s.pop_mark()
    klass = args.pop(0)
    s.scan.slow("OBJ")
    s.push(s.instantiate(klass, args, "OBJ"))


@_op(b"\x81")
def _newobj(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    args = s.pop()
    cls = s.pop()
    s.push(s.new(cls, args, None))


@_op(b"\x92")
def _newobj_ex(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    kwargs = s.pop()
    args = s.pop()
    cls = s.pop()
    s.scan.slow("NEWOBJ_EX")
    s.push(s.new(cls, args, kwargs))


@_op(b"R")
def _reduce(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    args = s.pop()
    s.stack[-1] = s.call(s.stack[-1], args)


@_op(b"b")
def _build(s: _Stream) -> None:
    s.scan.ops.append(s.op_pos)  # the fast path's rewrite (fastplan)
    state = s.pop()
    s.build(s.stack[-1], state)


def _extension(s: _Stream, code: int) -> None:
    s.problem(
        f"the stream names a global through the copyreg extension registry (code {code}), "
        "which cannot be resolved statically; refused"
    )
    s.push(_UNRESOLVED)


@_op(b"\x82")
def _ext1(s: _Stream) -> None:
    _extension(s, s.buf[s.take(1)])


@_op(b"\x83")
def _ext2(s: _Stream) -> None:
    _extension(s, struct.unpack_from("<H", s.buf, s.take(2))[0])


@_op(b"\x84")
def _ext4(s: _Stream) -> None:
    _extension(s, struct.unpack_from("<i", s.buf, s.take(4))[0])


@_op(b"P")
def _persid(s: _Stream) -> None:
    s.line()
    s.problem("the stream uses a persistent id, which safeload never writes; refused")
    s.push(_UNRESOLVED)


@_op(b"Q")
def _binpersid(s: _Stream) -> None:
    if _tainted(s.pop()):
        s.desync("used as a persistent id")
    s.problem("the stream uses a persistent id, which safeload never writes; refused")
    s.push(_UNRESOLVED)
