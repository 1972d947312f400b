"""``trust.toml``: who may sign which models, and until when (read by ``Keyring.from_dir``).

The file sits beside the ``*.pub`` files it names. It is parsed strictly: an unknown table or
key, a value of the wrong type, a rule naming an undeclared signer or a ``*.pub`` in the folder
that the file does not declare is an error (:class:`~safeload.errors.TrustFileError`), never
ignored, because a typo in a trust rule (``treshold``, ``expire``) silently weakening it is
worse than a refusal. This module parses and decides; reading the key files is ``keys.py``'s.
"""

from __future__ import annotations

import datetime
import re
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from safeload.errors import SignatureError, TrustFileError, shown
from safeload.layout import is_plain_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TRUST_FILE = "trust.toml"
MAX_TRUST_FILE = 64 * 1024
MAX_KEYS = 256
MAX_RULES = 256
MAX_PATTERNS = 256
#: Longest signed model name matched against the rules (store names are at most 128).
MAX_MODEL_NAME = 1024

# Statuses of one signature, as reported by inspect, verify and UntrustedSignerError.
VALID = "valid"
REVOKED = "revoked"
EXPIRED = "expired"
UNKNOWN = "unknown"
INVALID = "invalid"
DUPLICATE = "duplicate"

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_FIELDS = {"file", "expires", "revoked", "retired"}
_RULE_FIELDS = {"models", "signers", "threshold"}


@dataclass(frozen=True)
class KeyEntry:
    """One ``[keys.NAME]`` table."""

    name: str
    file: str
    expires: datetime.date | None = None
    revoked: bool = False
    retired: datetime.date | None = None

    def status(self, today: datetime.date) -> str:
        """``revoked``, ``expired`` (from the ``expires`` date on) or ``valid``."""
        if self.revoked:
            return REVOKED
        if self.expires is not None and today >= self.expires:
            return EXPIRED
        return VALID

    def retired_on(self, today: datetime.date) -> bool:
        """Whether new signatures by this key are refused (from the ``retired`` date on)."""
        return self.retired is not None and today >= self.retired


@dataclass(frozen=True)
class Rule:
    """One ``[[require]]`` table: models matching ``models`` need ``threshold`` of ``signers``."""

    index: int
    models: tuple[str, ...]
    signers: tuple[str, ...]
    threshold: int

    def matches(self, model_name: str) -> bool:
        """fnmatch, case-sensitive on every platform (``fnmatchcase``)."""
        return any(fnmatchcase(model_name, pattern) for pattern in self.models)


@dataclass(frozen=True)
class TrustFile:
    """A parsed ``trust.toml``: the declared keys by name, and the rules in file order."""

    source: str
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def rule_for(self, model_name: str) -> Rule | None:
        """The first rule whose patterns match the signed model name, or None.

        Matching costs the name's length times each pattern's, and the name is chosen by
        whoever signed: a name over :data:`MAX_MODEL_NAME` is refused, never taken as
        matching no rule (which would need fewer signers).
        """
        if self.rules and len(model_name) > MAX_MODEL_NAME:
            raise SignatureError(
                f"the signed model name is {len(model_name)} characters long, over "
                f"{MAX_MODEL_NAME}: the rules of {self.source} are not matched against it"
            )
        return next((rule for rule in self.rules if rule.matches(model_name)), None)


def today_utc() -> datetime.date:
    """The current date in UTC: what expiry and retirement are judged against."""
    return datetime.datetime.now(datetime.timezone.utc).date()


def model_name_of(subject_name: str) -> str:
    """The model name rules match: the signed subject ``NAME/VERSION`` without its version."""
    return subject_name.rsplit("/", 1)[0] if "/" in subject_name else subject_name


def parse_trust_file(data: bytes, source: str) -> TrustFile:
    """Parse and check ``trust.toml``; every problem is a :class:`TrustFileError`."""
    if len(data) > MAX_TRUST_FILE:
        raise TrustFileError(f"{source} is larger than {MAX_TRUST_FILE} bytes")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TrustFileError(f"{source} is not valid TOML: {exc}") from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise TrustFileError(
            f"{source} nests arrays or inline tables too deeply: a trust file is flat tables"
        ) from None
    _only(doc, {"keys", "require"}, source, "the top level")
    keys = _parse_keys(doc.get("keys", {}), source)
    rules = _parse_rules(doc.get("require", []), keys, source)
    return TrustFile(source, keys, rules)


def _only(table: dict[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise TrustFileError(
            f"{source}: unknown {'key' if len(unknown) == 1 else 'keys'} "
            f"{', '.join(shown(k) for k in unknown[:5])} in {where} (allowed: "
            f"{', '.join(sorted(allowed))}); a misspelt trust rule is refused, not ignored"
        )


def _date(value: Any, source: str, where: str) -> datetime.date:
    # A TOML datetime is a datetime.date subclass: only a plain date (2027-06-30) is accepted.
    if type(value) is not datetime.date:
        raise TrustFileError(f"{source}: {where} must be a TOML date such as 2027-06-30")
    return value


def _parse_keys(table: Any, source: str) -> dict[str, KeyEntry]:
    if not isinstance(table, dict):
        raise TrustFileError(f"{source}: 'keys' must be a table of [keys.NAME] tables")
    if len(table) > MAX_KEYS:
        raise TrustFileError(f"{source} declares more than {MAX_KEYS} keys")
    entries: dict[str, KeyEntry] = {}
    files: dict[str, str] = {}
    for name, body in table.items():
        if not _KEY_NAME.fullmatch(name):
            raise TrustFileError(
                f"{source}: key name {shown(name)} must be a plain name (letters, digits, "
                "'.', '_', '-'; at most 64 characters)"
            )
        where = f"[keys.{name}]"
        if not isinstance(body, dict):
            raise TrustFileError(f"{source}: {where} must be a table")
        _only(body, _KEY_FIELDS, source, where)
        file = body.get("file")
        if not isinstance(file, str) or not file.endswith(".pub") or not is_plain_name(file):
            raise TrustFileError(
                f'{source}: {where} needs file = "NAME.pub", the plain name of a public key '
                "in the same folder"
            )
        if file in files:
            raise TrustFileError(
                f"{source}: {where} and [keys.{files[file]}] name the same file {file}: one "
                "key must not count as two signers"
            )
        files[file] = name
        revoked = body.get("revoked", False)
        if not isinstance(revoked, bool):
            raise TrustFileError(f"{source}: {where} revoked must be true or false")
        expires = body.get("expires")
        retired = body.get("retired")
        entries[name] = KeyEntry(
            name,
            file,
            None if expires is None else _date(expires, source, f"{where} expires"),
            revoked,
            None if retired is None else _date(retired, source, f"{where} retired"),
        )
    return entries


def _strings(value: Any, source: str, where: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_PATTERNS
        or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in value)
    ):
        raise TrustFileError(f"{source}: {where} must be a non-empty list of strings")
    return tuple(value)


def _parse_rules(items: Any, keys: dict[str, KeyEntry], source: str) -> tuple[Rule, ...]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TrustFileError(f"{source}: 'require' must be an array of [[require]] tables")
    if len(items) > MAX_RULES:
        raise TrustFileError(f"{source} holds more than {MAX_RULES} rules")
    rules = []
    for index, body in enumerate(items, start=1):
        where = f"[[require]] number {index}"
        _only(body, _RULE_FIELDS, source, where)
        models = _strings(body.get("models"), source, f"{where} models")
        signers = _strings(body.get("signers"), source, f"{where} signers")
        undeclared = [s for s in signers if s not in keys]
        if undeclared:
            raise TrustFileError(
                f"{source}: {where} names signers not declared under [keys.NAME]: "
                f"{', '.join(shown(s) for s in undeclared[:5])}"
            )
        if len(set(signers)) != len(signers):
            raise TrustFileError(f"{source}: {where} lists a signer twice")
        threshold = body.get("threshold")
        if type(threshold) is not int or not 1 <= threshold <= len(signers):
            raise TrustFileError(
                f"{source}: {where} threshold must be an integer from 1 to {len(signers)} "
                "(the number of its signers)"
            )
        rules.append(Rule(index, models, signers, threshold))
    return tuple(rules)
