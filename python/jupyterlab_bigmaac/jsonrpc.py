"""JSON-RPC 2.0 messages and the Content-Length framing the agent speaks on stdio."""

from __future__ import annotations

import asyncio
import json
from typing import Any

# JSON-RPC 2.0 and LSP codes, plus the server's own (in the -32000..-32099 band).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
AGENT_UNAVAILABLE = -32001

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # refuse absurd headers instead of allocating them


class FramingError(Exception):
    """The byte stream does not follow Content-Length framing."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next framed message, or None at end of stream."""
    length = None
    while True:
        line = await reader.readline()
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise FramingError(f"bad Content-Length header {line!r}") from None
    if length is None or not 0 <= length <= MAX_MESSAGE_BYTES:
        raise FramingError(f"missing or out-of-range Content-Length ({length})")
    body = await reader.readexactly(length)
    try:
        message = json.loads(body)
    except ValueError as error:
        raise FramingError(f"message body is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise FramingError("message body is not a JSON object")
    return message


def response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def notification(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def is_response(message: dict[str, Any]) -> bool:
    return "method" not in message and ("result" in message or "error" in message)
