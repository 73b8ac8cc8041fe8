"""JSON in and out with msgspec: strict request decoding, one encoder for responses.

Request bodies decode strictly (a wrong type, a missing field or malformed JSON is
`400 invalid_input` naming the field); unknown fields are ignored. A body that is not
UTF-8, nests too deeply or holds a NUL character in a string (PostgreSQL text cannot
store one) is 400 too. A body sent with a Content-Type other than JSON is
`415 unsupported_media_type`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from quart import Response, request

from odted.api.errors import ApiError

T = TypeVar("T")

__all__ = ["encode", "json_response", "decode_body", "decode_bytes", "read_json_body"]

_encoder = msgspec.json.Encoder(decimal_format="string")
encode = _encoder.encode
_decoders: dict[Any, msgspec.json.Decoder] = {}
_AT = re.compile(r" - at `\$\.?(.*)`$")
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # a \u0000 escape, not an escaped backslash before u0000
_JSON_TYPE = re.compile(r"^\s*application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(obj), status=status, headers=headers, content_type="application/json")


def raw_json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=headers, content_type="application/json")


def decode_bytes(body: bytes, tp: type[T]) -> T:
    # The whole body, not only what msgspec decodes: it skips unknown fields and keeps
    # `Raw` ones (a strategy's config, a bot's reprice) undecoded, for a later decode.
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_input", "the body is not valid UTF-8") from None
    if b"\\u0000" in body and _NUL.search(body):  # legal JSON, but no text column can hold it
        raise ApiError(400, "invalid_input", "strings may not contain the NUL character (\\u0000)")
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp)
    try:
        return dec.decode(body)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _AT.search(msg)
        field = m.group(1) if m else ""
        text = _AT.sub("", msg)
        raise ApiError(400, "invalid_input", f"{field}: {text}" if field else text,
                       {"field": field} if field else {}) from None
    except msgspec.DecodeError as e:
        raise ApiError(400, "invalid_input", f"malformed JSON body: {e}") from None
    except RecursionError:  # msgspec's depth limit is the interpreter's
        raise ApiError(400, "invalid_input", "the JSON body is nested too deeply") from None


async def read_json_body(*, empty_ok: bool = False) -> bytes:
    """The request body: JSON by its Content-Type (`415 unsupported_media_type` when it
    names another type; none at all is taken as JSON). An empty body is `{}` when
    `empty_ok`, else `400 invalid_input`."""
    body = await request.get_data(cache=False)
    if not body.strip():
        if empty_ok:
            return b"{}"
        raise ApiError(400, "invalid_input", "a JSON body is required")
    ctype = request.headers.get("Content-Type")
    if ctype is not None and not _JSON_TYPE.match(ctype):
        raise ApiError(415, "unsupported_media_type", "the body must be JSON, sent with Content-Type: application/json")
    return body


async def decode_body(tp: type[T], *, empty_ok: bool = False) -> T:
    """Decode the request body as `tp`. An empty body is `{}` when `empty_ok`."""
    return decode_bytes(await read_json_body(empty_ok=empty_ok), tp)
