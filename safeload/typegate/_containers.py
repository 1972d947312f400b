"""The scanner's containers: nesting, hashing, comparing keys, and what may fill what.

:class:`_Containers` is the part of the symbolic stream (``_stream._Stream``) that builds and
fills tuples, lists, dicts and sets, checks BUILD states, and counts what hashing and comparing
keys will cost the loader.

Comparing keys.

The loader hashes every dict key and set member (charged by ``_Stream.hashed``) and then
*compares* it with each distinct key of the same hash already in its container. Hashing is
charged by size; this module charges the comparisons, against the same
``ScanLimits.max_hash_work``. Refusing container keys outright would be simpler (no model uses
them: measured over every estimator, keys are str, int and numpy scalars), but deep tuple keys
are legal, cheap to hash and accepted today; what makes them dangerous is only a comparison,
and comparisons only happen between colliding keys. So the principle is: every comparison the
loader will make is paid for before it is made.

* Comparing two distinct values walks every path through both, frozensets included (a
  frozenset caches its hash, not its equality): two equal memo-shared frozenset DAGs hash in
  linear time and compare in ``2**depth`` steps. One comparison is charged the product of the
  two keys' widths (values fully expanded, saturating), a bound for either order of walking.
* Ints, floats and tuples of them hash predictably (every ``7 + i * (2**61 - 1)`` hashes to
  7): ``n`` colliding keys cost ``n**2 / 2`` comparisons. Keys whose real value the scanner
  can rebuild are counted by their real hash, per container.
* A container key whose value the scanner cannot rebuild (it holds a frozenset, or an object
  a call made) might collide with any other such key: it is charged as if it did.
* The same object again (a memo-shared key) is compared by identity, for free.

Flat keys that calls made (numpy scalars) have a hash the scanner cannot know and are not
counted here: the restricted unpickler counts their collisions on the real values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from safeload.typegate._symbols import (
    _DICT_CLASSES,
    _KEEP_ITEMS,
    _NATIVE_KEYS,
    _SHADOWED,
    _SIZE_CAP,
    _any_tainted,
    _Dict,
    _hash_cost,
    _List,
    _Made,
    _measure,
    _Set,
    _shape,
    _tainted,
    _Tuple,
    _width,
)

if TYPE_CHECKING:
    from safeload.typegate._stream import _Scan

_UNKNOWN = object()
# str and bytes hash with the interpreter's secret SipHash key: a file cannot choose many keys
# whose full hashes collide (the only collisions dict and set compare), and comparing two of
# them costs their length, already paid to read them. Skipping them keeps a 300,000-word
# vocabulary at the speed of a plain scan; numbers, whose hashes anyone can compute, are counted.
_KEYED_STRINGS = (str, bytes)
_REAL_DEPTH = 32  # deeper keys are not rebuilt (and charged as unknown)


def _real_key(value: object, depth: int = 0) -> Any:
    """The real value of a key the scanner can rebuild exactly, or ``_UNKNOWN``."""
    if type(value) in _NATIVE_KEYS:
        return value
    if type(value) is _Tuple and value.items is not None and depth < _REAL_DEPTH:
        parts = []
        for item in value.items:
            real = _real_key(item, depth + 1)
            if real is _UNKNOWN:
                return _UNKNOWN
            parts.append(real)
        return tuple(parts)
    return _UNKNOWN


def charge_comparisons(
    s: _Containers, values: list[Any] | tuple[Any, ...], table: dict[object, list[Any]]
) -> None:
    """Charge what comparing ``values`` with the keys of their container will cost.

    ``table``: the container's keys so far, by real hash (``None``: the unknown ones), each
    bucket ``[{id: value}, distinct real values, widest, count]``; a fresh dict for a container that
    ``values`` create. Every step here is O(1) but for set lookups among colliding values,
    which are the comparisons just charged.
    """
    for value in values:
        if type(value) in _KEYED_STRINGS:
            continue  # see _KEYED_STRINGS
        width = _width(value)
        if width > 1 and width * width > s.scan.limits.max_hash_work:
            real: Any = _UNKNOWN  # too wide to rebuild: the charge below refuses it anyway
        else:
            real = _real_key(value)
        if real is _UNKNOWN:
            if width <= 1:
                continue  # a flat object a call made: counted by the second wall
            digest: object = None
        else:
            digest = hash(real)
        bucket = table.get(digest)
        if bucket is None:
            table[digest] = [{id(value): value}, set() if real is _UNKNOWN else {real}, width, 1]
            continue
        ids, reals, widest, count = bucket
        if id(value) in ids:
            continue  # the same object: compared by identity
        s.charge_compare(count * width * widest)
        bucket[2] = max(widest, width)
        if real is _UNKNOWN or real not in reals:  # the comparisons charged above
            ids[id(value)] = value  # kept alive, so that its id stays its own
            bucket[3] = count + 1
            if real is not _UNKNOWN:
                reals.add(real)


class _Containers:
    """Container helpers of ``_Stream`` (which provides the attributes declared here)."""

    scan: _Scan
    max_depth: int
    stack: list[Any]

    def problem(self, message: str) -> None:
        raise NotImplementedError

    def fatal(self, message: str) -> NoReturn:
        raise NotImplementedError

    def desync(self, how: str) -> None:
        raise NotImplementedError

    def made_set(self, frozen: bool, arg: object) -> _Set:
        """``set(items)`` / ``frozenset(items)``: a set the scanner measures like FROZENSET's."""
        made = _Set(False, frozen)
        items = arg.items if isinstance(arg, (_List, _Tuple)) else None
        if items is not None:
            tainted, depth, _ = _measure(items)
            made.tainted, made.depth = tainted, depth
            made.size = min(1 + len(items), _SIZE_CAP)
            _shape(made, items)
        return made

    def state_keys(self, state: _Dict) -> None:
        """A BUILD state (dict or slot part) may not shadow what the pickle machine calls.

        ``load_build`` calls ``inst.__setstate__``, APPEND(S) ``inst.extend``/``inst.append``,
        ADDITEMS ``inst.add``, and ``copy`` (scikit-learn's ``clone``) ``inst.__deepcopy__``
        and ``inst.__reduce_ex__``: lookups that find the instance's own attributes first. A
        trusted *reference* stored under such a name would be called with the file's
        arguments. No model stores a dunder name or these three as an attribute, so a state
        with one (or with keys the scanner cannot read) is refused.
        """
        if state.items is None:
            self.problem(
                "BUILD restores attributes whose names the scanner cannot read (symbolic keys, "
                "or too many), so it cannot tell whether they shadow methods the loader calls"
            )
            return
        for key in state.items:
            if type(key) is not str:
                self.problem(f"BUILD restores an attribute named by a {type(key).__name__}")
            elif (key.startswith("__") and key.endswith("__")) or key in _SHADOWED:
                self.problem(
                    f"BUILD stores {key!r} in an object's attributes: the pickle machine (or "
                    "copy) looks that name up on the instance and calls what it finds, so a "
                    "stored reference would be called with the file's arguments"
                )

    def too_deep(self) -> NoReturn:
        self.fatal(
            f"values nest more than {self.max_depth} levels deep (ScanLimits.max_depth): the "
            "loader's C code recurses through nested values without a guard (hashing a deep "
            "tuple crashes the interpreter), and no model nests this deep"
        )

    def charge_hash(self, work: int) -> None:
        """Count ``work`` steps of hashing in the loader against ScanLimits.max_hash_work."""
        self._spend(
            work,
            "the dict keys and set members of this file take more than {limit} steps to hash "
            "(ScanLimits.max_hash_work): refused as a hashing bomb (a tuple shared through the "
            "memo expands exponentially when hashed). If the model is genuine and this large, "
            "raise that limit",
        )

    def charge_compare(self, work: int) -> None:
        """Count ``work`` steps of comparing colliding keys against ScanLimits.max_hash_work."""
        self._spend(
            work,
            "dict keys or set members with colliding hashes take more than {limit} steps to "
            "hash and compare (ScanLimits.max_hash_work): refused as an equality bomb (two "
            "equal frozenset DAGs hash cheaply but compare exponentially; ints that hash alike "
            "make every insertion compare with every key before it)",
        )

    def _spend(self, work: int, refusal: str) -> None:
        """Hashing and comparing share one budget: what the loader spends on keys in total."""
        scan = self.scan
        scan.hash_work += work
        if scan.hash_work > scan.limits.max_hash_work:
            self.fatal(refusal.format(limit=scan.limits.max_hash_work))

    def hashed(
        self, values: list[Any] | tuple[Any, ...], table: dict[object, list[Any]] | None = None
    ) -> None:
        """The loader hashes each of ``values`` (dict keys, set members).

        It also compares each with the keys of the same hash in its container (``table``;
        ``None``: a container ``values`` create): see :func:`charge_comparisons`.
        """
        for value in values:
            if type(value) is not str:
                break
        else:
            # All str (an estimator's attribute names): each costs one step to hash, and
            # charge_comparisons skips str (see _KEYED_STRINGS), so this is its whole effect.
            self.charge_hash(len(values))
            return
        self.charge_hash(sum(_hash_cost(v) for v in values))
        charge_comparisons(self, values, {} if table is None else table)

    def tuple_of(self, items: list[Any]) -> _Tuple:
        tainted, depth, size = _measure(items)
        if depth > self.max_depth:
            self.too_deep()
        kept = tuple(items) if len(items) <= _KEEP_ITEMS else None
        made = _Tuple(kept, tainted, depth, size)
        _shape(made, items)
        return made

    def grow(self, target: _List | _Dict | _Set, items: list[Any]) -> bool:
        """Account for ``items`` added to a mutable container; return whether any is tainted."""
        tainted, depth, size = _measure(items)
        target.tainted = target.tainted or tainted
        if depth > target.depth:
            if depth > self.max_depth:
                self.too_deep()
            target.depth = depth
        if type(target) is not _Dict:
            target.size = min(target.size + size - 1, _SIZE_CAP)  # type: ignore[union-attr]
            _shape(target, items)  # type: ignore[arg-type]
        return tainted

    def extend(self, target: object, items: list[Any]) -> None:
        """APPEND/APPENDS, only on a list.

        Anything else has its ``extend``/``append`` called, looked up on the instance (a
        shadowing attribute, or a class's ``__getattr__``, as ``Bunch`` has).
        """
        if type(target) is _List:
            self.grow(target, items)
            if target.items is not None:
                target.items.extend(items)
                if len(target.items) > _KEEP_ITEMS:
                    target.items = None
            return
        self.problem(
            "APPENDS to something other than a list: the loader would call that object's "
            "extend or append, looked up on the instance, with the file's items"
        )
        if _any_tainted(items) or _tainted(target):
            self.desync("added to a container")

    def setitems(self, target: object, items: list[Any]) -> None:
        """SETITEM/SETITEMS (an odd item count fails in the loader after the pairs).

        Only on a dict, or an object made by a call to a dict class whose item assignment is
        dict's own (``_DICT_CLASSES``): anything else runs its class's ``__setitem__``.
        """
        kind = type(target)
        made = target.cls if isinstance(target, _Made) else None
        dict_like = made is not None and (made.module, made.name) in _DICT_CLASSES
        if kind is not _Dict and not dict_like:
            self.problem(
                "SETITEMS to something other than a dict: the loader would run that object's "
                "own item assignment with the file's keys and values"
            )
        self.hashed(
            items[0 : len(items) - 1 : 2],
            target.hashes if kind is _Dict or dict_like else None,  # type: ignore[attr-defined]
        )
        if type(target) is _Dict:
            self.grow(target, items)
            content = target.items
            if content is not None:
                for i in range(0, len(items) - 1, 2):
                    key = items[i]
                    if type(key) not in _NATIVE_KEYS or len(content) >= _KEEP_ITEMS:
                        target.items = content = None
                        break
                    content[key] = items[i + 1]
        elif _any_tainted(items) or _tainted(target):
            self.desync("added to a container")
        if len(items) % 2:
            self.fatal("SETITEMS has a key without a value")
