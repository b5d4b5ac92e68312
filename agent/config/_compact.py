"""Validated checks rebuilt to share what they have in common and to hold less.

A configuration of thousands of checks repeats itself: the same ``tls:``, ``watch:`` or
``alerting:`` block merged from ``defaults:``, the same labels, the same empty
``headers``, the same few sets of explicitly given keys. pydantic builds each check's
own copy of all of it, and a 28-key instance dict (~830 B) per check. After validation
each check is rebuilt once (:func:`compact`):

- a sub-model, mapping, list, tuple or duration interchangeable with one an earlier
  check of the same load holds is replaced by that one: equal, of the same types all
  the way down, with the same explicitly set fields (so ``model_dump(exclude_unset=True)``
  and ``model_fields_set`` are unchanged);
- models with the same explicitly set fields share one fields-set;
- the check's fields are set one by one, in declaration order, on a new instance, so
  CPython keeps them in a key-sharing instance dict (~290 B) — when that comes out
  smaller; otherwise the validated instance is kept.

Safe because config models are frozen and nothing changes a check's mappings after
loading (``model_copy`` already shares them between a check and its copies); equality,
hashing, ``model_copy``, ``model_dump`` and JSON output are the same.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Hashable
from typing import Any, TypeVar

from pydantic import BaseModel, ByteSize, SecretStr

__all__ = ["Shared", "compact", "prime_instance_dict"]

M = TypeVar("M", bound=BaseModel)

#: Values interchangeable when equal and of the same type: what a key is built from.
_ATOMS = frozenset((str, int, bool, bytes, type(None)))
#: Besides models, what is shared: durations (a float object each), mappings, lists and
#: tuples (an empty dict or list still costs 56-64 B). Other scalars are unique (names,
#: URLs) or one object already (small ints, None, booleans).
_SHARED_KINDS = frozenset((float, dict, list, tuple))
#: Value type -> whether an equal value may be shared.
_SHARABLE: dict[type, bool] = {}

#: For one load: a sharable value's key -> the first such value, and that value's id ->
#: the value (keys are tuples, ids ints: they never collide).
Shared = dict[Hashable, Any]

# One set of explicitly given field names per distinct combination, for the whole
# process: each check's own set costs ~700 B, and 10,000 checks mostly share a handful.
# Safe because the models are frozen (nothing adds to the set) and pydantic copies the
# set before ``model_copy(update=...)`` adds to it.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class _Unsharable(Exception):
    """A value whose interchangeable twin cannot be told by a key (left as it is)."""


def prime_instance_dict(cls: type[BaseModel]) -> None:
    """Let ``cls``'s instances keep their fields in a key-sharing dict.

    CPython shares one key table among the instance dicts of a class, but only for
    attributes set in the same order, and it stops admitting new keys to that table once
    a few dozen instances have been made. Setting every field once on a bare instance,
    before any is validated, registers them while it still can.
    """
    primer = object.__new__(cls)
    for name in cls.model_fields:
        object.__setattr__(primer, name, None)


def compact(model: M, shared: Shared) -> M:
    """``model`` rebuilt to share equal parts with the models of ``shared``'s load.

    Args:
        model: a validated, frozen model (a check).
        shared: the table of one load; filled with what ``model`` holds first.

    Returns:
        An equal model (a new instance, or ``model`` when rebuilding saves nothing).
    """
    values = model.__dict__.copy()
    for name, value in values.items():
        kind = type(value)
        sharable = _SHARABLE.get(kind)
        if sharable is None:
            sharable = _SHARABLE[kind] = kind in _SHARED_KINDS or issubclass(kind, BaseModel)
        # Most are the very objects an earlier check holds (class defaults, the shared
        # ones): known by identity, which only the kept values have (ids stay theirs).
        if sharable and shared.get(id(value)) is not value:
            values[name] = _shared(value, shared)
    rebuilt = object.__new__(type(model))
    fields = rebuilt.__dict__  # empty, on the class's shared keys
    for name, value in values.items():  # one by one: update() would copy the keys
        fields[name] = value
    object.__setattr__(rebuilt, "__pydantic_fields_set__", _fields_set(model))
    object.__setattr__(rebuilt, "__pydantic_extra__", model.__pydantic_extra__)
    object.__setattr__(rebuilt, "__pydantic_private__", model.__pydantic_private__)
    if sys.getsizeof(fields) < sys.getsizeof(model.__dict__):
        return rebuilt
    # The class's shared key table is unavailable (see prime_instance_dict): keep the
    # validated instance, with what it holds shared.
    object.__setattr__(model, "__pydantic_fields_set__", rebuilt.__pydantic_fields_set__)
    model.__dict__.update(values)
    return model


def _fields_set(model: BaseModel) -> set[str]:
    own = model.__pydantic_fields_set__
    return _FIELDS_SETS.setdefault(frozenset(own), own)


def _shared(value: Any, shared: Shared) -> Any:
    """The value an earlier model of the load holds in place of ``value``, if any."""
    if type(value) is tuple and not value:
        return value  # one object already
    try:
        key = _key(value)
    except _Unsharable:
        return value
    found = shared.get(key)
    if found is None:
        if isinstance(value, BaseModel):
            object.__setattr__(value, "__pydantic_fields_set__", _fields_set(value))
        found = shared[key] = shared[id(value)] = value
    return found


def _key(value: Any) -> Hashable:
    """What two values must have in common to be interchangeable.

    Equality alone is not enough (``1 == 1.0 == True``, ``0.0 == -0.0``, and a model's
    equality ignores which fields were given), so the key holds every type too.

    Raises:
        _Unsharable: something in ``value`` is not a known plain value.
    """
    kind = type(value)
    if kind in _ATOMS:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))
    if isinstance(value, BaseModel):
        if value.__pydantic_extra__ or value.__pydantic_private__:
            raise _Unsharable
        return (
            kind,
            frozenset(value.__pydantic_fields_set__),
            tuple((name, _key(v)) for name, v in value.__dict__.items()),
        )
    if kind is dict:
        return (kind, tuple((_key(k), _key(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return (kind, tuple(_key(v) for v in value))
    if kind is SecretStr:
        return (kind, value.get_secret_value())
    if kind is ByteSize:
        return (kind, int(value))
    if isinstance(value, enum.Enum):
        return (kind, value)
    if kind is re.Pattern:
        return (kind, value.pattern, value.flags)
    raise _Unsharable
