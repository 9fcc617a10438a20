"""ROS 2 types on the DDS wire, generated at run time from .msg/.srv definitions (never written by hand).

The definitions come from a `rosbags` type store: the standard ones rosbags ships, ours from msg/ (see
`vispeak_ros.interfaces`), the audio_common flavours from `vispeak_ros.ros.audio_common`, and the std_srvs
services below. From those this module derives, for each type:
- its DDS type name as rmw_cyclonedds spells it (`pkg::msg::dds_::Name_`, `pkg::srv::dds_::Name_Request_`);
- a `cyclonedds` IdlStruct class with that name and the same layout (used to create topics, so that the type
  information Cyclone announces matches, and in the conformance tests);
- CDR bytes via rosbags (the same bytes ROS 2 sends; the binding's own Python (de)serialiser is 100x slower).

Topic names follow rmw_cyclonedds: `/a/b` -> `rt/a/b`; service `/a/b` -> `rq/a/bRequest` and `rr/a/bReply`,
whose samples start with rmw_cyclonedds' request header (uint64 client writer id, int64 sequence number).
"""

from __future__ import annotations

import keyword
import struct
from typing import Any

import numpy as np

TOPIC_PREFIX = "rt"
REQUEST_PREFIX = "rq"
REPLY_PREFIX = "rr"
# rmw_cyclonedds' cdds_request_header_t: uint64 guid (the client's request-writer instance handle), int64 seq.
REQUEST_HEADER = struct.Struct("<Qq")
ENCAPSULATION_CDR_LE = b"\x00\x01\x00\x00"
REQUEST_HEADER_FIELDS = ("rmw_client_guid", "rmw_sequence_number")

# The std_srvs service definitions (ros2/common_interfaces, std_srvs/srv/*.srv), the services vispeak_ros offers.
SERVICE_DEFINITIONS: dict[str, str] = {
    "std_srvs/srv/Trigger": "---\nbool success\nstring message\n",
    "std_srvs/srv/Empty": "---\n",
    "std_srvs/srv/SetBool": "bool data\n---\nbool success\nstring message\n",
}

_NUMPY_DTYPES = {
    "bool": np.bool_,
    "byte": np.uint8,
    "octet": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def dds_type_name(ros_type: str) -> str:
    """`sensor_msgs/msg/Image` -> `sensor_msgs::msg::dds_::Image_`; `std_srvs/srv/Trigger_Request` ->
    `std_srvs::srv::dds_::Trigger_Request_` (rmw_cyclonedds' type_name.cpp)."""
    parts = ros_type.split("/")
    if len(parts) != 3 or parts[1] not in ("msg", "srv", "action") or not all(parts):
        raise ValueError(f"not a ROS 2 interface name: {ros_type!r} (expected pkg/msg/Name or pkg/srv/Name)")
    pkg, kind, name = parts
    return f"{pkg}::{kind}::dds_::{name}_"


def _check_absolute(name: str, what: str) -> None:
    if not name.startswith("/") or name.endswith("/") or "//" in name:
        raise ValueError(f"{what} must be a fully qualified ROS name like /a/b, got {name!r}")


def dds_topic_name(topic: str) -> str:
    """`/a/b` -> `rt/a/b`."""
    _check_absolute(topic, "topic")
    return TOPIC_PREFIX + topic


def service_topic_names(service: str) -> tuple[str, str]:
    """`/a/b` -> (`rq/a/bRequest`, `rr/a/bReply`)."""
    _check_absolute(service, "service")
    return f"{REQUEST_PREFIX}{service}Request", f"{REPLY_PREFIX}{service}Reply"


def pad4(data: bytes) -> bytes:
    """Pad CDR to a multiple of 4 bytes with zeros, as rmw_cyclonedds' serdata does before sending."""
    extra = -len(data) % 4
    return data + b"\0" * extra if extra else data


def register_service(typestore: Any, srv_type: str, definition: str | None = None) -> tuple[str, str]:
    """Register `<srv>_Request` and `<srv>_Response` into a rosbags typestore; returns their names.

    Empty halves get rosidl's `uint8 structure_needs_at_least_one_member`, as ROS 2 sends them.
    """
    from rosbags.typesys import get_types_from_msg

    request_name, response_name = f"{srv_type}_Request", f"{srv_type}_Response"
    if request_name in typestore.fielddefs and response_name in typestore.fielddefs:
        return request_name, response_name
    text = definition if definition is not None else SERVICE_DEFINITIONS.get(srv_type)
    if text is None:
        raise KeyError(f"no definition for service {srv_type!r}; known: {', '.join(sorted(SERVICE_DEFINITIONS))}")
    halves = text.split("\n---", 1) if not text.startswith("---") else ["", text[3:]]
    if len(halves) != 2:
        raise ValueError(f"service definition of {srv_type!r} has no '---' separator")
    filler = get_types_from_msg("uint8 structure_needs_at_least_one_member", "x/msg/Filler")["x/msg/Filler"][1]
    defs = {}
    for name, half in ((request_name, halves[0]), (response_name, halves[1].lstrip("-"))):
        ((_, (consts, fields)),) = get_types_from_msg(half, name).items()
        defs[name] = (consts, fields or filler)
    typestore.register(defs)
    return request_name, response_name


class DdsTypes:
    """Per-typestore cache of IdlStruct classes, default messages and CDR codecs."""

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore
        self._idl: dict[str, type] = {}
        self._service_idl: dict[str, type] = {}
        self._primitive_arrays: dict[str, dict[str, Any]] = {}

    # -- definitions -------------------------------------------------------------------------------------------
    def fields(self, ros_type: str) -> list[tuple[str, tuple[Any, Any]]]:
        try:
            return self.typestore.fielddefs[ros_type][1]
        except KeyError:
            raise KeyError(
                f"ROS type {ros_type!r} is not in the type store; register it (vispeak_ros.interfaces for ours, "
                "vispeak_ros.ros.audio_common for audio_common_msgs, register_service for services)"
            ) from None

    def message_class(self, ros_type: str) -> type:
        self.fields(ros_type)
        return self.typestore.types[ros_type]

    # -- IdlStruct generation ----------------------------------------------------------------------------------
    def idl_class(self, ros_type: str) -> type:
        """The cyclonedds IdlStruct for a message type, named `pkg::msg::dds_::Name_`."""
        cls = self._idl.get(ros_type)
        if cls is None:
            from cyclonedds.idl import make_idl_struct

            annotations = {
                self._field_name(ros_type, n): self._idl_field(ros_type, n, d) for n, d in self.fields(ros_type)
            }
            cls = make_idl_struct(ros_type.rsplit("/", 1)[1] + "_", dds_type_name(ros_type), annotations)
            self._idl[ros_type] = cls
        return cls

    def service_idl_class(self, ros_type: str) -> type:
        """The IdlStruct of a request or reply topic: rmw_cyclonedds' header, then the request/response fields."""
        cls = self._service_idl.get(ros_type)
        if cls is None:
            from cyclonedds.idl import make_idl_struct
            from cyclonedds.idl.types import int64, uint64

            annotations: dict[str, Any] = {REQUEST_HEADER_FIELDS[0]: uint64, REQUEST_HEADER_FIELDS[1]: int64}
            for name, desc in self.fields(ros_type):
                if name in annotations:
                    raise ValueError(f"{ros_type}: field {name!r} collides with rmw_cyclonedds' request header")
                annotations[self._field_name(ros_type, name)] = self._idl_field(ros_type, name, desc)
            cls = make_idl_struct(ros_type.rsplit("/", 1)[1] + "_", dds_type_name(ros_type), annotations)
            self._service_idl[ros_type] = cls
        return cls

    @staticmethod
    def _field_name(ros_type: str, name: str) -> str:
        if keyword.iskeyword(name):
            raise ValueError(f"{ros_type}: field name {name!r} is a Python keyword; cyclonedds cannot represent it")
        return name

    def _idl_field(self, ros_type: str, name: str, desc: tuple[Any, Any]) -> Any:
        from cyclonedds.idl import types as t
        from rosbags.typesys.store import Nodetype

        base = {
            "bool": bool,
            "byte": t.byte,
            "octet": t.byte,
            "char": t.uint8,
            "int8": t.int8,
            "uint8": t.uint8,
            "int16": t.int16,
            "uint16": t.uint16,
            "int32": t.int32,
            "uint32": t.uint32,
            "int64": t.int64,
            "uint64": t.uint64,
            "float32": t.float32,
            "float64": t.float64,
            "string": str,
        }
        node, detail = desc
        if node == Nodetype.BASE:
            typ, bound = detail
            if typ == "string" and bound:
                return t.bounded_str[bound]
            if typ not in base:
                raise TypeError(f"{ros_type}.{name}: type {typ!r} is not supported on the DDS wire here")
            return base[typ]
        if node == Nodetype.NAME:
            return self.idl_class(detail)
        if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            sub, count = detail
            element = self._idl_field(ros_type, name, sub)
            if node == Nodetype.ARRAY:
                return t.array[element, count]
            return t.sequence[element, count] if count else t.sequence[element]
        raise TypeError(f"{ros_type}.{name}: unknown field kind {node!r}")

    # -- messages ----------------------------------------------------------------------------------------------
    def new_message(self, ros_type: str, **fields: Any) -> Any:
        """A message with ROS defaults (0, false, '', empty sequences, zeroed arrays) for the fields not given.

        Primitive arrays/sequences given as bytes, bytearray, memoryview or lists become numpy arrays of the
        field's element type (rosbags serialises numpy arrays only).
        """
        from rosbags.typesys.store import Nodetype

        values: dict[str, Any] = {}
        for name, (node, detail) in self.fields(ros_type):
            if name in fields:
                value = fields.pop(name)
                if node in (Nodetype.ARRAY, Nodetype.SEQUENCE) and detail[0][0] == Nodetype.BASE:
                    dtype = _NUMPY_DTYPES.get(detail[0][1][0])
                    if dtype is not None and not isinstance(value, np.ndarray):
                        if isinstance(value, (bytes, bytearray, memoryview)):
                            value = np.frombuffer(value, dtype=dtype)
                        else:
                            value = np.asarray(value, dtype=dtype)
                values[name] = value
            else:
                values[name] = self._default(node, detail)
        if fields:
            known = ", ".join(name for name, _ in self.fields(ros_type))
            raise TypeError(f"{ros_type} has no field(s) {', '.join(sorted(fields))}; fields: {known}")
        return self.typestore.types[ros_type](**values)

    def _default(self, node: Any, detail: Any) -> Any:
        from rosbags.typesys.store import Nodetype

        if node == Nodetype.BASE:
            typ = detail[0]
            if typ == "string":
                return ""
            if typ == "bool":
                return False
            return 0.0 if typ.startswith("float") else 0
        if node == Nodetype.NAME:
            return self.new_message(detail)
        (sub_node, sub_detail), count = detail
        if sub_node == Nodetype.BASE and sub_detail[0] in _NUMPY_DTYPES:
            return np.zeros(count if node == Nodetype.ARRAY else 0, dtype=_NUMPY_DTYPES[sub_detail[0]])
        if node == Nodetype.ARRAY:
            return [self._default(sub_node, sub_detail) for _ in range(count)]
        return []

    # -- CDR -----------------------------------------------------------------------------------------------------
    def serialize(self, msg: Any, ros_type: str) -> bytes:
        """CDR (XCDR1, little endian, 4-byte encapsulation header) padded to 4 bytes, as ROS 2 sends it."""
        return pad4(bytes(self.typestore.serialize_cdr(msg, ros_type)))

    def deserialize(self, data: bytes | memoryview, ros_type: str) -> Any:
        return self.typestore.deserialize_cdr(data, ros_type)

    def serialize_service(self, msg: Any, ros_type: str, client_guid: int, sequence_number: int) -> bytes:
        """A request or reply sample: encapsulation, rmw_cyclonedds' header, then the body (alignment unchanged:
        the header is 16 bytes)."""
        body = bytes(self.typestore.serialize_cdr(msg, ros_type))
        return pad4(body[:4] + REQUEST_HEADER.pack(client_guid, sequence_number) + body[4:])

    def deserialize_service(self, data: bytes, ros_type: str) -> tuple[int, int, Any]:
        """(client_guid, sequence_number, body message) of a request or reply sample."""
        if len(data) < 4 + REQUEST_HEADER.size:
            raise ValueError(f"{ros_type}: sample of {len(data)} bytes is too short for a request header")
        guid, seq = REQUEST_HEADER.unpack_from(data, 4)
        body = bytes(data[:4]) + bytes(data[4 + REQUEST_HEADER.size :])
        return guid, seq, self.typestore.deserialize_cdr(body, ros_type)
