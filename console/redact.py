"""The one rule for showing a URL that may carry credentials (messages, logs, audit, --show-config)."""

from __future__ import annotations


def without_userinfo(url: str) -> str:
    """'http://user:secret@host:8888/mi' -> 'http://host:8888/mi'.

    Everything up to the last '@' after the scheme goes, even past a '/', '?' or '#': a password
    typed with one of those unescaped ('http://ops:pa/ss@host/mi') must not show either.  The price,
    an '@' in the path or query cuts too much of what is shown, is paid only in display.  Text
    without '://' (a FIFO path, which may hold an '@') is returned as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://{rest.rpartition('@')[2]}"
