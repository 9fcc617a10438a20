"""Message fields as numpy arrays without copying, whatever the transport hands us.

rclpy gives `array.array` for numeric sequences (and `bytes` for uint8[] on some versions), rosbags gives numpy
arrays (views into the CDR buffer), our DDS types give bytes or lists. All of these expose the buffer protocol
except lists, so the common paths cost no copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vispeak_ros.core.clock import stamp_to_ns


def as_bytes_array(data: Any) -> np.ndarray:
    """A read-only 1-D uint8 view of a uint8[] field (bytes, bytearray, memoryview, array.array, ndarray, list)."""
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 and data.ndim == 1:
            return data
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


def as_typed_array(data: Any, dtype: np.dtype | type) -> np.ndarray:
    """A 1-D array of `dtype` from a typed sequence field (float32[], int16[], ...), a view where possible."""
    dtype = np.dtype(dtype)
    if isinstance(data, np.ndarray):
        return data.reshape(-1).astype(dtype, copy=False)
    if isinstance(data, (bytes, bytearray)):
        return np.frombuffer(data, dtype=dtype)  # raw little-endian payload, as some DDS bindings hand it over
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=dtype)
    array = np.asarray(data)  # array.array / memoryview: buffer protocol with its own item format
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array.reshape(-1)


def header_stamp_ns(msg: Any) -> int | None:
    """Stamp of `msg.header` in nanoseconds, or None for a message without a header."""
    header = getattr(msg, "header", None)
    if header is None:
        return None
    return stamp_to_ns(header.stamp)
