"""The call rules: the only forms in which a file may call a trusted name, wall by wall.

See :mod:`safeload._default_types` for what each rule means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from safeload import _default_types as rules
from safeload.policy import format_type_name
from safeload.typegate._symbols import (
    _ARRAY,
    _BIT_GENERATOR_CTOR,
    _BIT_GENERATORS,
    _BYTES,
    _OBJ,
    _ZERO_SHAPE_DTYPES,
    _Dtype,
    _falsy,
    _Global,
    _List,
    _Tuple,
)
from safeload.typegate.dtypes import dtype_call_problem

if TYPE_CHECKING:
    from safeload.typegate._stream import _Stream

# --- call rules (see safeload._default_types): the only forms the library's pickles take --


def _is_zero_shape(value: object) -> bool:
    items = value.items if type(value) is _Tuple else None
    return items is not None and len(items) == 1 and type(items[0]) is int and items[0] == 0


def _is_bit_generator(value: object) -> bool:
    if type(value) is str:
        return True
    return type(value) is _Global and (value.module, value.name) in _BIT_GENERATORS


def _check_dtype(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    return dtype_call_problem(items)


def _check_reconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if (
        len(items) != 3
        or type(items[0]) is not _Global
        or not _is_zero_shape(items[1])
        or items[2] not in _ZERO_SHAPE_DTYPES
    ):
        return "with other than (<array class>, (0,), b'b'): an allocation the file would choose"
    return None


def _check_mareconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if (
        len(items) != 4
        or type(items[0]) is not _Global
        or type(items[1]) is not _Global
        or not _is_zero_shape(items[2])
        or items[3] not in _ZERO_SHAPE_DTYPES
    ):
        return "with other than (<class>, <class>, (0,), 'b'): an allocation the file would choose"
    return None


def _check_scalar(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 2 or type(items[0]) is not _Dtype:
        return "with other than (<dtype>, <raw bytes>) (the one-argument form allocates)"
    if type(items[1]) is not bytes and items[1] is not _BYTES:
        return "with a value that is not its raw bytes"
    return None


def _check_frombuffer(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) not in (4, 5) or type(items[1]) is not _Dtype:
        return "with other than (<bytes>, <dtype>, <shape>, <order>[, <axes>])"
    buf, _, shape, order = items[:4]
    if type(buf) is not bytes and buf is not _BYTES:
        return "on something other than bytes from the file"
    if not _is_int_tuple(shape) or order not in ("C", "F", "K"):
        return "with a shape or order numpy never writes"
    if len(items) == 5 and items[4] is not None and not _is_int_tuple(items[4]):
        return "with an axis order that is not a tuple of ints"
    return None


def _is_int_tuple(value: object) -> bool:
    items = value.items if type(value) is _Tuple else None
    return items is not None and all(type(v) is int for v in items)


def _check_bit_generator(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 1 or (items and not _is_bit_generator(items[0])):
        return "with something other than a bit generator's name or class (it calls what it gets)"
    return None


def _check_rng(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 2:
        return "with more than two arguments"
    if items and not (_is_bit_generator(items[0]) or items[0] is _OBJ):
        return "with something other than a bit generator or its name"
    if len(items) == 2:
        ctor = items[1]
        if type(ctor) is not _Global or (ctor.module, ctor.name) != _BIT_GENERATOR_CTOR:
            return "with a constructor other than numpy's __bit_generator_ctor (it is called)"
    return None


def _check_module_class(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    cls = items[0] if len(items) == 1 else None
    if type(cls) is not _Global or cls.module != func.module or cls is func:
        return f"with something other than one class of {func.module} (it creates what it gets)"
    return None


def _check_pyx_unpickle(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    target = (func.module, func.name.removeprefix("__pyx_unpickle_"))
    cls = items[0] if len(items) == 3 else None
    if type(cls) is not _Global or (cls.module, cls.name) != target or type(items[1]) is not int:
        return f"with other than ({format_type_name(target)}, <checksum>, <state>)"
    return None


def _check_tree(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (n_features, n_classes, n_outputs)"
    n_features, n_classes, n_outputs = items
    if type(n_features) is not int or n_features < 0:
        return "with a feature count that is not a non-negative int"
    if type(n_outputs) is not int or n_outputs < 1:
        return "with an output count that is not a positive int"
    if n_classes is not _ARRAY and n_classes is not _OBJ:
        return "with class counts that are not an array"
    return None


def _check_hashed(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 1:
        return "with more than one argument"
    if items:
        arg = items[0]
        if type(arg) is not _List and type(arg) is not _Tuple:
            return "with something other than a list or tuple of its items"
        s.charge_hash(arg.size - 1)
    return None


def _check_copyreg_reconstructor(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (class, base, state)"
    cls, base = items[0], items[1]
    if type(base) is _Global and base.kind == "object":  # object.__new__(cls)
        return s.copyreg_target(cls, "NEWOBJ", ())
    # base.__new__(cls, state) and base.__init__(obj, state): both must be callable freely.
    why = s.copyreg_target(base, "REDUCE", None)
    return why if why is not None else s.copyreg_target(cls, "NEWOBJ", ())


def _check_copyreg_newobj(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if not items:
        return "without a class"
    return s.copyreg_target(items[0], "NEWOBJ", items[1:])


def _check_copyreg_newobj_ex(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (class, args, kwargs)"
    cls, args, kwargs = items
    if type(args) is not _Tuple or not _falsy(kwargs):
        return "with arguments the scanner cannot read"
    return s.copyreg_target(cls, "NEWOBJ_EX", args.items)


_RULE_CHECKS: dict[str, Callable[[_Stream, _Global, tuple[Any, ...]], str | None]] = {
    rules.DTYPE: _check_dtype,
    rules.RECONSTRUCT: _check_reconstruct,
    rules.MARECONSTRUCT: _check_mareconstruct,
    rules.SCALAR: _check_scalar,
    rules.FROMBUFFER: _check_frombuffer,
    rules.BIT_GENERATOR: _check_bit_generator,
    rules.RNG: _check_rng,
    rules.MODULE_CLASS: _check_module_class,
    rules.PYX_UNPICKLE: _check_pyx_unpickle,
    rules.TREE: _check_tree,
    rules.HASHED: _check_hashed,
    rules.COPYREG_RECONSTRUCTOR: _check_copyreg_reconstructor,
    rules.COPYREG_NEWOBJ: _check_copyreg_newobj,
    rules.COPYREG_NEWOBJ_EX: _check_copyreg_newobj_ex,
}
