"""Encoding of user values (inputs, results, activity arguments) with msgspec.

Values are kept in history as JSON builtins and decoded back to the annotated type on replay:
msgspec Structs, dataclasses, attrs classes, plain JSON types, and pydantic models (duck-typed
through ``model_dump``/``model_validate``, so pydantic is never imported here).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from .errors import InvalidInput

_json_encoder = msgspec.json.Encoder(order="deterministic")
_json_decoder = msgspec.json.Decoder()


def _enc_hook(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, BaseException):
        return {"type": type(value).__qualname__, "message": str(value)}
    raise NotImplementedError(f"cannot encode a value of type {type(value).__qualname__}")


_hooked_encoder = msgspec.json.Encoder(enc_hook=_enc_hook, order="deterministic")


def to_builtins(value: Any, *, what: str = "value") -> Any:
    """Turn ``value`` into JSON builtins (dict, list, str, int, float, bool, None)."""
    try:
        return msgspec.to_builtins(value, enc_hook=_enc_hook, order="deterministic")
    except (TypeError, NotImplementedError, msgspec.EncodeError) as exc:
        raise InvalidInput(f"{what} cannot be encoded as JSON: {exc}") from exc


def encode(value: Any, *, what: str = "value") -> bytes:
    """Encode ``value`` to JSON bytes (deterministic key order)."""
    try:
        return _hooked_encoder.encode(value)
    except (TypeError, NotImplementedError, msgspec.EncodeError) as exc:
        raise InvalidInput(f"{what} cannot be encoded as JSON: {exc}") from exc


def decode(data: bytes | str, *, what: str = "value") -> Any:
    """Decode JSON bytes to builtins."""
    try:
        return _json_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from exc


# Values that are their own JSON builtins: no conversion needed (the replay fast path).
PLAIN_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def convert(raw: Any, tp: Any, *, what: str = "value") -> Any:
    """Convert JSON builtins ``raw`` to the annotated type ``tp`` (``Any``/None: unchanged)."""
    if tp is None or tp is Any or (type(raw) is tp and tp in PLAIN_TYPES):
        return raw
    validate = getattr(tp, "model_validate", None)
    if isinstance(tp, type) and callable(validate):
        try:
            return validate(raw)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic
            raise InvalidInput(f"{what} does not match {tp.__qualname__}: {exc}") from exc
    try:
        return msgspec.convert(raw, tp, strict=False)
    except (msgspec.ValidationError, TypeError) as exc:
        name = getattr(tp, "__qualname__", repr(tp))
        raise InvalidInput(f"{what} does not match {name}: {exc}") from exc


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of JSON-encodable ``parts`` (used to detect changed arguments)."""
    data = _hooked_encoder.encode(parts)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


__all__ = ["PLAIN_TYPES", "convert", "decode", "encode", "fingerprint", "to_builtins"]
