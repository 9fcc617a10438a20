"""Seeded random ROS messages walked from the type store's definitions, for the DDS tests and the peer process.

Random lengths and contents (odd string lengths, empty and non-empty sequences) exercise CDR alignment and
padding; a seed makes the publisher process and the test build the same messages independently.
"""

from __future__ import annotations

import random
import string
from typing import Any

import numpy as np
from rosbags.typesys.store import Nodetype

from vispeak_ros.ros.adapters.dds_types import DdsTypes

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    # rosbags packs ROS 2 `byte` (an octet) as a signed char: stay in the range both read the same.
    "byte": (0, 2**7 - 1),
    "octet": (0, 2**7 - 1),
    "char": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_DTYPES = {
    "bool": np.bool_,
    "float32": np.float32,
    "float64": np.float64,
    **{name: getattr(np, name) for name in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")},
    "byte": np.uint8,
    "octet": np.uint8,
    "char": np.uint8,
}


def random_message(types: DdsTypes, ros_type: str, rng: random.Random, max_len: int = 5) -> Any:
    """A message of `ros_type` with every field random."""
    fields = {name: _value(types, node, detail, rng, max_len) for name, (node, detail) in types.fields(ros_type)}
    return types.typestore.types[ros_type](**fields)


def _scalar(typ: str, bound: int, rng: random.Random) -> Any:
    if typ == "bool":
        return rng.random() < 0.5
    if typ == "string":
        length = rng.randint(0, bound or 13)
        return "".join(rng.choice(string.ascii_letters + " äß☞") for _ in range(length))[: bound or None]
    if typ in _INT_RANGES:
        low, high = _INT_RANGES[typ]
        return rng.randint(low, high)
    if typ == "float32":
        return float(np.float32(rng.uniform(-1e6, 1e6)))
    return rng.uniform(-1e12, 1e12)


def _value(types: DdsTypes, node: Any, detail: Any, rng: random.Random, max_len: int) -> Any:
    if node == Nodetype.BASE:
        return _scalar(detail[0], detail[1], rng)
    if node == Nodetype.NAME:
        return random_message(types, detail, rng, max_len)
    (sub_node, sub_detail), count = detail
    length = count if node == Nodetype.ARRAY else rng.randint(0, min(count, max_len) if count else max_len)
    if sub_node == Nodetype.BASE and sub_detail[0] in _DTYPES:
        values = [_scalar(sub_detail[0], 0, rng) for _ in range(length)]
        return np.array(values, dtype=_DTYPES[sub_detail[0]])
    return [_value(types, sub_node, sub_detail, rng, max_len) for _ in range(length)]


def to_idl(types: DdsTypes, ros_type: str, msg: Any, service: bool = False) -> Any:
    """The same message as an instance of the generated cyclonedds IdlStruct (the binding's typed path)."""
    cls = types.service_idl_class(ros_type) if service else types.idl_class(ros_type)
    values = {
        name: _idl_value(types, node, detail, getattr(msg, name)) for name, (node, detail) in types.fields(ros_type)
    }
    if service:
        values.update(rmw_client_guid=0x0123456789ABCDEF, rmw_sequence_number=42)
    return cls(**values)


def _idl_value(types: DdsTypes, node: Any, detail: Any, value: Any) -> Any:
    if node == Nodetype.BASE:
        return value
    if node == Nodetype.NAME:
        return to_idl(types, detail, value)
    (sub_node, sub_detail), _ = detail
    if isinstance(value, np.ndarray):
        return value.tolist()
    return [_idl_value(types, sub_node, sub_detail, item) for item in value]
