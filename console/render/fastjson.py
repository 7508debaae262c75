"""The one big list of `snapshot --json`, encoded by msgspec, byte for byte what json.dumps writes (#18).

At 10 000 contacts `json.dumps(..., ensure_ascii=True)` spends ~30 ms on the registrations list alone;
msgspec (already a dependency: the ul_dump decoder) encodes it in ~8 ms, and `msgspec.json.format(...,
indent=0)` puts the same single spaces after `,` and `:` that json.dumps does.  The two differ only where
json.dumps escapes and msgspec does not (any byte from 0x7f up: DEL and every non-ASCII character) and on
lone surrogates (msgspec refuses them), so a result holding such a byte, or any error, falls back to
json.dumps.  Used for lists of plain dicts of str, int, bool, None and lists of those (no floats, whose text
the two libraries may spell differently): the registrations of the snapshot document.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

FAST_MIN_ITEMS = 1000  # below this json.dumps is quick enough, and one encoder is simpler to reason about


def dumps_list(items: list) -> str | None:
    """`json.dumps(items, ensure_ascii=True)`, or None when msgspec's text could differ from it."""
    try:
        import msgspec

        raw = msgspec.json.format(msgspec.json.encode(items), indent=0)
    except Exception:  # a lone surrogate, an unexpected type: json.dumps decides
        return None
    if not raw.isascii() or b"\x7f" in raw:
        return None
    return raw.decode("ascii")


def dumps_spliced(data: Any, key: str, encode: Callable[[Any], str]) -> str | None:
    """`encode(data)` with `data[key]` (a long list) encoded by `dumps_list` and spliced in its place;
    None when that does not apply (then the caller encodes `data` itself)."""
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) < FAST_MIN_ITEMS:
        return None
    fast = dumps_list(items)
    if fast is None:
        return None
    token = f"opsconsole-fastjson-{os.urandom(8).hex()}"
    text = encode({**data, key: token})  # the key keeps its place
    marker = json.dumps(token)
    if text.count(marker) != 1:
        return None
    return text.replace(marker, fast, 1)
