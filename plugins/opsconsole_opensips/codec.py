"""OpenSIPS MI JSON-RPC 2.0 codec: bytes <-> results.  No I/O.

Error shapes follow the real captures (tests/fixtures/opensips-3.4/mi/error.*):
mi_http answers HTTP 400 + HTML on a wrong URL path, HTTP 500 when a reply does
not fit its print buffer (opensips#2562), and JSON-RPC errors otherwise.  Module
errors reuse HTTP-like codes (404 "AOR not found", 400 "Domain missing in AOR").
"""

from __future__ import annotations

import json
from typing import Any, Callable

from console.errors import ProtocolError, RemoteError, ResponseTooLarge

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # whole-table walks: a 100k-contact ul_dump is ~30 MB
# Every other command answers in kilobytes (10k TCP connections ~1.5 MB): anything far
# bigger is a wrong peer, and must not cost the console tens of MB of memory.
CHEAP_MAX_BYTES = 8 * 1024 * 1024

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


class MIError(RemoteError):
    """OpenSIPS answered the MI request with an error (JSON-RPC or module code)."""

    def __init__(self, message: str, *, code: int | None = None, data=None, method: str = "",
                 target: str = "", hint: str = "") -> None:
        super().__init__(message, code=code, data=data, target=target, hint=hint)
        self.method = method


class MIPathError(ProtocolError):
    """mi_http answered 'Unable to parse URL!': the URL path is not the mi_http root."""


class MIServerError(RemoteError):
    """mi_http answered HTTP 5xx (typically: the reply did not fit httpd's buffer)."""


def encode_request(method: str, params: dict | list | None = None, id: int | str = 1) -> bytes:
    """One JSON-RPC 2.0 request body.  `params` is omitted when None (mi_http accepts both)."""
    if not isinstance(method, str) or not method:
        raise ValueError("MI method must be a non-empty string")
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        if not isinstance(params, (dict, list)):
            raise ValueError("MI params must be an object or an array")
        request["params"] = params
    return json.dumps(request, separators=(",", ":")).encode()


def check_size(size: int, max_bytes: int = DEFAULT_MAX_BYTES, *, target: str = "") -> None:
    if size > max_bytes:
        raise ResponseTooLarge(
            f"MI response larger than {max_bytes} bytes (got at least {size})",
            target=target,
            hint="raise the response size cap, or ask for less (ul_dump brief, paged dlg_list)",
        )


def decode_response(body: bytes, *, status: int = 200, content_type: str = "", method: str = "",
                    target: str = "", max_bytes: int = DEFAULT_MAX_BYTES, expected_type: type | tuple | None = None,
                    not_json_hint: str = "is this URL an OpenSIPS mi_http root?",
                    typed: Callable[[bytes], Any] | None = None) -> Any:
    """Return `result` of a JSON-RPC response body or raise a typed OpsError.

    `typed` (e.g. wire.decode_dump) decodes the usual shape of one command's reply
    straight into records; when it returns None the reply is decoded generically."""
    check_size(len(body), max_bytes, target=target)
    _check_http_status(body, status, content_type, method, target)
    if typed is not None and isinstance(body, bytes):
        result = typed(body)
        if result is not None:
            return result
    try:
        # OpenSIPS copies SIP header bytes into its JSON as they came: one phone with a
        # non-UTF-8 User-Agent must not hide every registration.  surrogateescape keeps
        # those bytes recoverable; the renderers show them escaped.
        text = bytes(body).decode("utf-8", "surrogateescape") if isinstance(body, (bytes, bytearray, memoryview)) else body
        # The GC is not ours to switch off here (console/heap.py: the live console's policy);
        # the one huge reply, ul_dump, takes the typed path (wire.py) anyway.
        reply = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        message = _not_json_message(body, method)
        hint = ("the reply was cut short: OpenSIPS may have restarted or crashed while answering"
                if "truncated" in message else not_json_hint)
        raise ProtocolError(message, target=target, hint=hint) from None
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise ProtocolError(f"MI reply{_for(method)} is not a JSON-RPC response object", target=target)
    if "error" in reply and reply["error"] is not None:
        raise _remote_error(reply["error"], method, target)
    result = reply["result"]
    if expected_type is not None and not isinstance(result, expected_type):
        raise ProtocolError(
            f"MI reply{_for(method)} has a result of type {type(result).__name__}, expected {_type_names(expected_type)}",
            target=target,
        )
    return result


def _for(method: str) -> str:
    return f" to {method!r}" if method else ""


def _type_names(expected: type | tuple) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def _not_json_message(body: bytes, method: str) -> str:
    if not body.strip():
        return f"MI reply{_for(method)} is empty"
    stripped = body.rstrip()
    if stripped[:1] in (b"{", b"[") and stripped[-1:] not in (b"}", b"]"):
        return f"MI reply{_for(method)} is truncated JSON ({len(body)} bytes)"
    return f"MI reply{_for(method)} is not JSON ({len(body)} bytes, starts {body[:40]!r})"


def _check_http_status(body: bytes, status: int, content_type: str, method: str, target: str) -> None:
    if status == 200:
        return
    if status == 400 and b"Unable to parse URL" in body:
        raise MIPathError(
            "MI URL path is wrong: OpenSIPS answered 'Unable to parse URL!'",
            target=target,
            hint="check the mi_http root, e.g. /mi (modparam(\"mi_http\", \"root\", ...))",
        )
    if status >= 500:
        raise MIServerError(
            f"OpenSIPS mi_http failed with HTTP {status}{_for(method)}",
            code=status,
            target=target,
            hint="a reply too big for the httpd buffer (e.g. ul_dump, opensips#2562): raise pkg memory (-M) "
                 "or modparam(\"httpd\",\"buf_size\",...), or avoid full dumps",
        )
    raise ProtocolError(
        f"MI answered HTTP {status}{_for(method)} ({content_type or 'no content type'})",
        target=target,
        hint="is this URL an OpenSIPS mi_http root?",
    )


def _remote_error(error: Any, method: str, target: str) -> OpsErrorLike:
    if not isinstance(error, dict):
        return ProtocolError(f"MI reply{_for(method)} has a malformed error member", target=target)
    code = error.get("code")
    message = str(error.get("message", "")) or "error"
    data = error.get("data")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    name = method or "?"
    if code == METHOD_NOT_FOUND:
        return MIError(
            f"OpenSIPS has no MI command {name!r} (Method not found)",
            code=code, data=data, method=method, target=target,
            hint="it may be renamed in OpenSIPS 4.0 (module:cmd names) or its module is not loaded",
        )
    if code == INVALID_PARAMS:
        detail = f": {data}" if data else ""
        return MIError(f"MI command {name!r} rejected its parameters (Invalid params{detail})",
                       code=code, data=data, method=method, target=target)
    if code == PARSE_ERROR:
        return MIError("OpenSIPS could not parse our MI request (Parse error)", code=code, data=data,
                       method=method, target=target)
    if code == INVALID_REQUEST:
        return MIError("OpenSIPS rejected our MI request as not JSON-RPC 2.0 (Invalid Request)", code=code,
                       data=data, method=method, target=target)
    return MIError(f"MI command {name!r} failed: {message}" + (f" (code {code})" if code is not None else ""),
                   code=code, data=data, method=method, target=target)


OpsErrorLike = ProtocolError | MIError
