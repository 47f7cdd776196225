"""Settings dicts: defaults overridden by the user's parameters, typos refused."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def with_defaults(defaults: Mapping[str, Any], settings: Mapping[str, Any] | None,
                  what: str) -> dict[str, Any]:
    """``defaults`` overridden by ``settings``.

    Raises:
        ValueError: naming the unknown key(s) of ``what`` settings (a typo would otherwise be
            silently ignored) and the known ones.
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {what} setting(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **settings}
