"""Camera messages (sensor_msgs/Image, sensor_msgs/CompressedImage) to RGB uint8 HxWx3 arrays, in two steps.

The camera publishes at 15-60 fps but the model sees one frame per second, so decoding is split:

1. `frame_payload(msg, topic)` is cheap: it checks the encoding/format and the sizes and keeps a zero-copy view
   of the bytes plus metadata. The segmenter stores payloads for frames it may never use.
2. `decode_frame(payload)` does the work (colour conversion, JPEG/PNG decoding); the segmenter calls it only
   for the frame it picks.

Messages are duck-typed (`height, width, encoding, is_bigendian, step, data` or `format, data`), so rclpy,
rosbags and our DDS messages all work. The inverse (`rgb_to_image_msg_fields`, `rgb_to_compressed_msg_fields`,
`encode_jpeg`, `encode_png`) serves tests, replay and the synthetic world. OpenCV is imported on first decode.

Encoding facts (sensor_msgs/image_encodings.hpp, ros2/common_interfaces): `yuv422` is the deprecated name of
`uyvy` (bytes U Y0 V Y1) and `yuv422_yuy2` the deprecated name of `yuyv` (bytes Y0 U Y1 V). YUV and Bayer
conversions use the same OpenCV codes as cv_bridge. 16-bit images keep their high byte (value >> 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vispeak_ros.ros.conversions.buffers import as_bytes_array, header_stamp_ns
from vispeak_ros.ros.conversions.errors import ConversionError, malformed, unsupported


@dataclass(frozen=True)
class _Layout:
    """How a raw encoding lies in memory: bytes per pixel in a row, rows per image row, pixel alignment."""

    pixel_bytes: int  # bytes per pixel within a row (per Y row for the planar 4:2:0 formats)
    channels: int  # values per pixel in the row view
    depth: int  # bytes per value: 1 or 2
    row_factor: float = 1.0  # stored rows per image row (1.5 for nv12/nv21: Y plane then interleaved UV plane)
    even_width: bool = False
    even_height: bool = False


_RAW: dict[str, _Layout] = {
    "rgb8": _Layout(3, 3, 1),
    "bgr8": _Layout(3, 3, 1),
    "rgba8": _Layout(4, 4, 1),
    "bgra8": _Layout(4, 4, 1),
    "mono8": _Layout(1, 1, 1),
    "8UC1": _Layout(1, 1, 1),
    "8UC3": _Layout(3, 3, 1),  # no colour semantics in ROS; taken as OpenCV's BGR order
    "8UC4": _Layout(4, 4, 1),  # likewise BGRA
    "rgb16": _Layout(6, 3, 2),
    "bgr16": _Layout(6, 3, 2),
    "rgba16": _Layout(8, 4, 2),
    "bgra16": _Layout(8, 4, 2),
    "mono16": _Layout(2, 1, 2),
    "16UC1": _Layout(2, 1, 2),
    "uyvy": _Layout(2, 2, 1, even_width=True),
    "yuv422": _Layout(2, 2, 1, even_width=True),  # = uyvy
    "yuyv": _Layout(2, 2, 1, even_width=True),
    "yuv422_yuy2": _Layout(2, 2, 1, even_width=True),  # = yuyv
    "nv12": _Layout(1, 1, 1, row_factor=1.5, even_width=True, even_height=True),
    "nv21": _Layout(1, 1, 1, row_factor=1.5, even_width=True, even_height=True),
    "bayer_rggb8": _Layout(1, 1, 1, even_width=True, even_height=True),
    "bayer_bggr8": _Layout(1, 1, 1, even_width=True, even_height=True),
    "bayer_gbrg8": _Layout(1, 1, 1, even_width=True, even_height=True),
    "bayer_grbg8": _Layout(1, 1, 1, even_width=True, even_height=True),
}

RAW_ENCODINGS: tuple[str, ...] = tuple(_RAW)
COMPRESSED_CODECS: tuple[str, ...] = ("jpeg", "png")

# OpenCV colour codes to RGB, by attribute name (cv2 is imported lazily). Bayer names follow cv_bridge: OpenCV
# names a Bayer pattern by its second row, so ROS rggb is OpenCV "BG".
_CV_CODES = {
    "uyvy": "COLOR_YUV2RGB_UYVY",
    "yuv422": "COLOR_YUV2RGB_UYVY",
    "yuyv": "COLOR_YUV2RGB_YUY2",
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2",
    "nv12": "COLOR_YUV2RGB_NV12",
    "nv21": "COLOR_YUV2RGB_NV21",
    "bayer_rggb8": "COLOR_BayerBG2RGB",
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A compressed frame may claim any size: a few MB of PNG can inflate to gigabytes (a decompression bomb). Frames
# whose header claims more pixels than 8K UHD are refused before decoding.
MAX_COMPRESSED_PIXELS = 7680 * 4320
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


@dataclass(frozen=True, eq=False)
class FramePayload:
    """An undecoded camera frame: validated metadata plus a zero-copy uint8 view of the message bytes.

    `codec` is None for raw images, else "jpeg" or "png". `stamp_ns` / `frame_id` come from the header when the
    message has one. The view keeps the message buffer alive; payloads are meant to be short-lived.
    """

    topic: str
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: bool
    data: np.ndarray
    codec: str | None = None
    stamp_ns: int | None = None
    frame_id: str = ""

    @property
    def compressed(self) -> bool:
        return self.codec is not None

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


# ---- step 1: cheap capture -------------------------------------------------------------------------------------


def frame_payload(msg: Any, topic: str = "") -> FramePayload:
    """Validate an Image or CompressedImage and capture its bytes without decoding. Raises ConversionError."""
    header = getattr(msg, "header", None)
    stamp_ns = header_stamp_ns(msg)
    frame_id = str(getattr(header, "frame_id", "")) if header is not None else ""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return _compressed_payload(msg, topic, stamp_ns, frame_id)
    return _raw_payload(msg, topic, stamp_ns, frame_id)


def _raw_payload(msg: Any, topic: str, stamp_ns: int | None, frame_id: str) -> FramePayload:
    encoding = str(msg.encoding)
    layout = _RAW.get(encoding)
    if layout is None:
        raise unsupported(topic, "image encoding", encoding, RAW_ENCODINGS)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise malformed(topic, f"{encoding} image of {width}x{height} pixels")
    if (layout.even_width and width % 2) or (layout.even_height and height % 2):
        raise malformed(topic, f"{encoding} needs even dimensions, got {width}x{height}")
    row_bytes = width * layout.pixel_bytes
    if step < row_bytes:
        raise malformed(topic, f"step {step} < width {width} x {layout.pixel_bytes} bytes per pixel for {encoding}")
    data = as_bytes_array(msg.data)
    rows = int(height * layout.row_factor)
    expected = step * rows
    if not (expected - (step - row_bytes) <= data.size <= expected):
        raise malformed(topic, f"{data.size} data bytes, expected step {step} x {rows} rows = {expected}")
    return FramePayload(
        topic=topic,
        encoding=encoding,
        height=height,
        width=width,
        step=step,
        is_bigendian=bool(msg.is_bigendian),
        data=data,
        stamp_ns=stamp_ns,
        frame_id=frame_id,
    )


def compressed_codec(format_string: str, head: bytes, topic: str = "") -> str:
    """The codec of a CompressedImage: from the data's magic bytes, else from the `format` string.

    `format` is free text: "jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; compressed bgr8" (no codec named:
    the bytes tell). compressedDepth (a private header before the PNG) and video codecs are not supported.
    """
    lowered = format_string.lower()
    if "compresseddepth" in lowered:
        raise unsupported(topic, "CompressedImage format", format_string, COMPRESSED_CODECS)
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if "jpeg" in lowered or "jpg" in lowered:
        return "jpeg"  # bytes are not a JPEG: the decoder will say so, when (if ever) the frame is used
    if "png" in lowered:
        return "png"
    raise unsupported(topic, "CompressedImage format", format_string, COMPRESSED_CODECS)


def _compressed_payload(msg: Any, topic: str, stamp_ns: int | None, frame_id: str) -> FramePayload:
    data = as_bytes_array(msg.data)
    format_string = str(msg.format)
    if data.size == 0:
        raise malformed(topic, f"CompressedImage ({format_string!r}) with no data")
    codec = compressed_codec(format_string, data[:8].tobytes(), topic)
    size = compressed_size(data)
    if size is not None and size[0] * size[1] > MAX_COMPRESSED_PIXELS:
        raise malformed(topic, f"{codec} frame of {size[0]}x{size[1]} pixels (at most {MAX_COMPRESSED_PIXELS} pixels)")
    return FramePayload(
        topic=topic,
        encoding=format_string,
        height=0,
        width=0,
        step=0,
        is_bigendian=False,
        data=data,
        codec=codec,
        stamp_ns=stamp_ns,
        frame_id=frame_id,
    )


def compressed_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG header claims, read without decoding; None when the header does not say."""
    head = data[:8].tobytes()
    if head.startswith(_PNG_MAGIC) and data.size >= 24:
        ihdr = data[16:24].tobytes()
        return int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:], "big")
    if not head.startswith(_JPEG_MAGIC):
        return None
    at, end = 2, int(data.size)
    while at + 9 <= end and data[at] == 0xFF:  # walk the marker segments up to the start of frame
        marker = int(data[at + 1])
        if marker in _JPEG_SOF:
            return int(data[at + 7]) << 8 | int(data[at + 8]), int(data[at + 5]) << 8 | int(data[at + 6])
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        at += 2 + (int(data[at + 2]) << 8 | int(data[at + 3]))
    return None


# ---- step 2: decode --------------------------------------------------------------------------------------------


def decode_frame(payload: FramePayload) -> np.ndarray:
    """The payload as a C-contiguous RGB uint8 array of shape (H, W, 3) that owns its memory."""
    if payload.codec is not None:
        return _decode_compressed(payload)
    return _decode_raw(payload)


def image_to_rgb(msg: Any, topic: str = "") -> np.ndarray:
    """Both steps at once, for callers that want every frame."""
    return decode_frame(frame_payload(msg, topic))


def _rows(payload: FramePayload, layout: _Layout) -> np.ndarray:
    """The pixel rows as a (rows, width * pixel_bytes) uint8 view (padding cut off, a short last row padded)."""
    rows = int(payload.height * layout.row_factor)
    data = payload.data
    expected = payload.step * rows
    if data.size < expected:  # the last row's padding was left out: harmless, pad it back
        data = np.concatenate([data, np.zeros(expected - data.size, dtype=np.uint8)])
    return data[:expected].reshape(rows, payload.step)[:, : payload.width * layout.pixel_bytes]


def _decode_raw(payload: FramePayload) -> np.ndarray:
    encoding = payload.encoding
    layout = _RAW[encoding]
    rows = _rows(payload, layout)
    if encoding in _CV_CODES:
        import cv2

        code = getattr(cv2, _CV_CODES[encoding])
        src = np.ascontiguousarray(rows)
        if layout.channels == 2:
            src = src.reshape(payload.height, payload.width, 2)
        return np.ascontiguousarray(cv2.cvtColor(src, code))
    if layout.depth == 2:
        dtype = np.dtype(">u2" if payload.is_bigendian else "<u2")
        wide = np.ascontiguousarray(rows).view(dtype)
        values = (wide >> 8).astype(np.uint8)
    else:
        values = rows
    pixels = values.reshape(payload.height, payload.width, layout.channels)
    if layout.channels == 1:
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2))
    if encoding.startswith(("rgb", "rgba")):
        return pixels[:, :, :3].copy()  # a copy even when the rows were already packed RGB: never alias the message
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # bgr*, bgra*, 8UC3, 8UC4


def _decode_compressed(payload: FramePayload) -> np.ndarray:
    import cv2

    flag = getattr(cv2, "IMREAD_COLOR_RGB", None)
    try:
        image = cv2.imdecode(payload.data, cv2.IMREAD_COLOR if flag is None else flag)
    except cv2.error as exc:
        raise ConversionError(f"{payload.topic}: cannot decode {payload.codec} ({payload.encoding!r}): {exc}") from exc
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise ConversionError(
            f"{payload.topic}: cannot decode {payload.codec} ({payload.encoding!r}, {payload.nbytes} bytes): "
            "corrupt or truncated data"
        )
    if flag is None:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


# ---- inverse: RGB to message fields ----------------------------------------------------------------------------


def rgb_to_image_msg_fields(
    rgb: np.ndarray, encoding: str = "rgb8", *, row_padding: int = 0, is_bigendian: bool = False
) -> dict[str, Any]:
    """Fields of a sensor_msgs/Image (all but header) holding `rgb` in `encoding`.

    Exact for the colour-order encodings; mono keeps luma (exact when R == G == B); 16-bit stores v * 257 (so
    decoding returns v); YUV and Bayer subsample chroma, as cameras do. `row_padding` bytes are appended to each
    stored row, to exercise `step`.
    """
    import cv2

    rgb = _check_rgb(rgb)
    layout = _RAW.get(encoding)
    if layout is None:
        raise unsupported("", "image encoding", encoding, RAW_ENCODINGS)
    height, width = rgb.shape[:2]
    if (layout.even_width and width % 2) or (layout.even_height and height % 2):
        raise ValueError(f"{encoding} needs even dimensions, got {width}x{height}")
    if encoding in ("uyvy", "yuv422", "yuyv", "yuv422_yuy2"):
        code = cv2.COLOR_RGB2YUV_UYVY if encoding in ("uyvy", "yuv422") else cv2.COLOR_RGB2YUV_YUY2
        rows = cv2.cvtColor(rgb, code).reshape(height, width * 2)
    elif encoding in ("nv12", "nv21"):
        i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # Y plane, then U plane, then V plane
        luma = i420[:height]
        chroma = i420[height:].reshape(-1)
        u, v = chroma[: chroma.size // 2], chroma[chroma.size // 2 :]
        first, second = (u, v) if encoding == "nv12" else (v, u)
        uv = np.stack([first, second], axis=1).reshape(height // 2, width)
        rows = np.concatenate([luma, uv], axis=0)
    elif encoding.startswith("bayer_"):
        pattern = encoding[len("bayer_") : len("bayer_") + 4]  # e.g. "rggb": colours at (0,0) (0,1) (1,0) (1,1)
        index = {"r": 0, "g": 1, "b": 2}
        rows = np.empty((height, width), dtype=np.uint8)
        for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            rows[dy::2, dx::2] = rgb[dy::2, dx::2, index[pattern[k]]]
    else:
        if layout.channels == 1:
            values = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
        elif encoding.startswith("rgb"):
            values = rgb
        else:
            values = rgb[:, :, ::-1]
        if layout.channels == 4:
            alpha = np.full((height, width, 1), 255, dtype=np.uint8)
            values = np.concatenate([values, alpha], axis=2)
        if layout.depth == 2:
            wide = values.astype(np.uint16) * 257
            values = wide.astype(">u2" if is_bigendian else "<u2").view(np.uint8)
        rows = np.ascontiguousarray(values).reshape(height, -1)
    row_bytes = width * layout.pixel_bytes
    if row_padding:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], row_padding), dtype=np.uint8)], axis=1)
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(bool(is_bigendian) and layout.depth == 2),
        "step": row_bytes + row_padding,
        "data": np.ascontiguousarray(rows).reshape(-1),
    }


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB image (what compressed_image_transport publishes)."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(_check_rgb(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(rgb: np.ndarray, compression: int = 3) -> bytes:
    """PNG bytes of an RGB image (lossless)."""
    import cv2

    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(_check_rgb(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def rgb_to_compressed_msg_fields(rgb: np.ndarray, codec: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """Fields of a sensor_msgs/CompressedImage (all but header), with image_transport's format string."""
    if codec == "jpeg":
        data = encode_jpeg(rgb, quality)
    elif codec == "png":
        data = encode_png(rgb)
    else:
        raise unsupported("", "compression codec", codec, COMPRESSED_CODECS)
    return {"format": f"rgb8; {codec} compressed bgr8", "data": np.frombuffer(data, dtype=np.uint8)}


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)
