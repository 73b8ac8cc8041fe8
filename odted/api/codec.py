"""JSON in and out with msgspec: strict request decoding, one encoder for responses.

Request bodies decode strictly (a wrong type, a missing field or malformed JSON is
`400 invalid_input` naming the field); unknown fields are ignored.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from quart import Response, request

from odted.api.errors import ApiError

T = TypeVar("T")

__all__ = ["encode", "json_response", "decode_body", "decode_bytes"]

_encoder = msgspec.json.Encoder(decimal_format="string")
encode = _encoder.encode
_decoders: dict[Any, msgspec.json.Decoder] = {}
_AT = re.compile(r" - at `\$\.?(.*)`$")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(obj), status=status, headers=headers, content_type="application/json")


def raw_json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=headers, content_type="application/json")


def decode_bytes(body: bytes, tp: type[T]) -> T:
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


async def decode_body(tp: type[T], *, empty_ok: bool = False) -> T:
    """Decode the request body as `tp`. An empty body is `{}` when `empty_ok`."""
    body = await request.get_data(cache=False)
    if not body.strip():
        if empty_ok:
            body = b"{}"
        else:
            raise ApiError(400, "invalid_input", "a JSON body is required")
    return decode_bytes(body, tp)
