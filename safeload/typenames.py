"""Exact global names, ``module:qualname``: how policies, rules and policy files spell them.

A name is spelled ``module:qualname`` when it must be unambiguous, and ``module.qualname`` for
display; the short form is split at its last dot, so a nested qualname (``Outer.Inner``) needs
the colon form.
"""

from __future__ import annotations

TypeName = tuple[str, str]


def parse_type_name(text: str) -> TypeName:
    """Split ``module:qualname`` (or ``module.qualname``) into its exact pair.

    Every dotted part must be a Python identifier: nothing else can name a global, and a
    stray space or newline would otherwise make a name that looks like one but is not.
    """
    if not isinstance(text, str):
        raise TypeError(f"a type name is a 'module:qualname' string, not {type(text).__name__}")
    text = text.strip()
    if ":" in text:
        module, _, qualname = text.partition(":")
    else:
        module, _, qualname = text.rpartition(".")
    parts = [*module.split("."), *qualname.split(".")]
    if not module or not qualname or not all(p.isidentifier() for p in parts):
        raise ValueError(f"not a type name: {text!r} (expected 'module:qualname')")
    return module, qualname


def format_type_name(name: TypeName) -> str:
    """Render a pair the way users read it: ``module.qualname``."""
    return f"{name[0]}.{name[1]}"
