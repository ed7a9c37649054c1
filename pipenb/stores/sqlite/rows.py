"""A SQLite row's value as bytes and back: pickling with a CRC32, and reading it back checked.

State rows, history rows and the rows of the history journal all store a
pickled value (or, for state, raw ``bytes``) beside the CRC32 of the stored
bytes. This module is the one place that turns a value into those bytes and
back, so the three kinds fail the same way, with a ``StoreError`` naming the
file, the run and the key or seq: a value that cannot be pickled says which
part of it, a damaged value is reported instead of coming back wrong.
"""

from __future__ import annotations

import pickle
import zlib

from ...core.errors import StoreError
from ...core.state import is_mapping

PICKLED, RAW = 0, 1
"""The ``kind`` column of ``pipenb_state``: a pickled value, or raw bytes (no pickling, no extra copy)."""


def type_name(value: object) -> str:
    """A value's type as error messages name it: ``int``, ``socket.socket``."""
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def article(name: str) -> str:
    """``a name`` or ``an name``, for error messages."""
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _unpicklable_part(value: object, where: str, depth: int = 0) -> tuple[str, object] | None:
    """The innermost part of ``value`` that does not pickle, as (its path, it); None if none is found."""
    if depth < 50:
        if is_mapping(value) or isinstance(value, dict):
            items = value.items()
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = enumerate(value)
        else:
            items = ()
        for k, v in items:
            try:
                pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                found = _unpicklable_part(v, f"{where}[{k!r}]", depth + 1)
                return found if found is not None else (f"{where}[{k!r}]", v)
    return None


def _not_kept(run_id: str, what: str, value: object, path: str, exc: BaseException) -> StoreError:
    part = _unpicklable_part(value, path)
    found = type_name(value) if part is None else f"{type_name(part[1])} (at {part[0]})"
    return StoreError(f"run {run_id}: {what} holds {article(found)} that cannot be pickled, so the commit was not "
                      f"kept: {type(exc).__name__}: {exc}")


def unpicklable(run_id: str, key: str, value: object, exc: BaseException) -> StoreError:
    """The StoreError for a state value that cannot be pickled, naming the run, the key and the part that fails."""
    return _not_kept(run_id, f"key {key!r}", value, key, exc)


def pickle_state(run_id: str, key: str, value: object) -> tuple:
    """``(run_id, key, blob, kind, crc)`` for ``pipenb_state``: raw ``bytes`` as they are, anything else pickled."""
    if type(value) is bytes:
        blob, kind = value, RAW
    else:
        try:
            blob, kind = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), PICKLED
        except Exception as exc:
            raise unpicklable(run_id, key, value, exc) from exc
    return (run_id, key, blob, kind, zlib.crc32(blob))


def pickle_history(run_id: str, row: tuple) -> tuple:
    """``(run_id, seq, blob, crc)`` for the history table; StoreError naming the run and the seq if it cannot pickle."""
    try:
        blob = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise _not_kept(run_id, f"history row {row[0]}", row, "row", exc) from exc
    return (run_id, row[0], blob, zlib.crc32(blob))


def check_crc(where: str, what: str, blob: bytes, crc: int | None) -> None:
    """Refuse ``blob`` if it does not match its stored ``crc`` (None: a row of schema 0, read unchecked).

    ``where`` names the file and the run, ``what`` the row (``key 'x'``, ``history row 3``)."""
    if crc is not None and zlib.crc32(blob) != crc:
        raise StoreError(f"{where}: {what} is corrupt (checksum mismatch over its {len(blob)} stored bytes); the file "
                         f"was damaged or changed outside pipenb")


def unpickle(where: str, what: str, blob: bytes) -> object:
    """``blob`` unpickled; a StoreError naming the file, the run and the row if it cannot be."""
    try:
        return pickle.loads(blob)
    except Exception as exc:
        raise StoreError(f"{where}: cannot unpickle {what}: {type(exc).__name__}: {exc}") from exc


def checked_value(where: str, what: str, blob: bytes, kind: int, crc: int | None) -> object:
    """A stored value read back: its checksum checked, then unpickled (or, raw, as it is)."""
    check_crc(where, what, blob, crc)
    return blob if kind == RAW else unpickle(where, what, blob)
