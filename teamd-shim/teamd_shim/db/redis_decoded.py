"""Replies of redis-py clients made with `decode_responses=True`, typed as what they are.

redis-py annotates every reply as `bytes | str`: its types cannot see `decode_responses`. Every
raw client of this product decodes (`ownership.client`, the labs' clients), so each reply is a
`str`; these helpers say so once, here, instead of a cast at every call. They only narrow types:
each one is the redis-py call it wraps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

import redis

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT


def hgetall(r: redis.Redis, name: str) -> dict[str, str]:
    return cast("dict[str, str]", r.hgetall(name))


def hget(r: redis.Redis, name: str, key: str) -> str | None:
    return cast("str | None", r.hget(name, key))


def keys(r: redis.Redis, pattern: str) -> list[str]:
    return cast("list[str]", r.keys(pattern))


def fields(mapping: Mapping[str, str]) -> Mapping[FieldT, EncodableT]:
    """A str -> str mapping as hset's `mapping=` (whose key type is invariant)."""
    return cast("Mapping[FieldT, EncodableT]", mapping)
