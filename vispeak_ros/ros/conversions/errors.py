"""The one error type of the conversions: a message we cannot turn into model input."""

from __future__ import annotations

from collections.abc import Iterable


class ConversionError(ValueError):
    """An unsupported encoding/format or malformed message; the text names the topic and what is supported."""


def unsupported(topic: str, what: str, value: object, supported: Iterable[str]) -> ConversionError:
    """`topic`: unsupported <what> 'value' (supported: a, b, c)."""
    listed = ", ".join(supported)
    return ConversionError(f"{topic or '<no topic>'}: unsupported {what} {value!r} (supported: {listed})")


def malformed(topic: str, detail: str) -> ConversionError:
    return ConversionError(f"{topic or '<no topic>'}: malformed message: {detail}")
