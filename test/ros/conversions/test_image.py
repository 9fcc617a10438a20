"""Image and CompressedImage conversions: every encoding round-trips through real CDR, cheap capture, clear errors."""

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_typestore

from vispeak_ros.ros.conversions import ConversionError
from vispeak_ros.ros.conversions.image import (
    RAW_ENCODINGS,
    FramePayload,
    decode_frame,
    encode_jpeg,
    encode_png,
    frame_payload,
    image_to_rgb,
    rgb_to_compressed_msg_fields,
    rgb_to_image_msg_fields,
)

TOPIC = "/camera/image_raw"
STORE = get_typestore(Stores.ROS2_HUMBLE)
Image = STORE.types["sensor_msgs/msg/Image"]
CompressedImage = STORE.types["sensor_msgs/msg/CompressedImage"]
Header = STORE.types["std_msgs/msg/Header"]
Time = STORE.types["builtin_interfaces/msg/Time"]

LOSSLESS = ["rgb8", "bgr8", "rgba8", "bgra8", "8UC3", "8UC4", "rgb16", "bgr16", "rgba16", "bgra16"]
GREY = ["mono8", "8UC1", "mono16", "16UC1"]
CHROMA_SUBSAMPLED = ["uyvy", "yuv422", "yuyv", "yuv422_yuy2", "nv12", "nv21"]
BAYER = ["bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"]


def header(sec: int = 12, nanosec: int = 345) -> object:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="camera")


def through_cdr(msg):
    """Serialise to CDR and back, as rosbag2 or DDS would hand the message to us."""
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def image_msg(rgb, encoding, **kwargs):
    return through_cdr(Image(header=header(), **rgb_to_image_msg_fields(rgb, encoding, **kwargs)))


def random_rgb(height=6, width=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_rgb(height=48, width=64):
    """A natural-looking image (smooth colour gradients) for lossy paths."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([40 + 150 * x / width, 30 + 180 * y / height, 200 - 120 * (x + y) / (width + height)], axis=2)
    return rgb.round().astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def assert_rgb_output(out, shape, msg=None):
    assert out.dtype == np.uint8 and out.shape == (*shape, 3)
    assert out.flags.c_contiguous and out.flags.writeable
    if msg is not None:
        assert not np.shares_memory(out, np.asarray(msg.data))


@pytest.mark.parametrize("encoding", LOSSLESS)
@pytest.mark.parametrize("padding", [0, 5])
def test_colour_encodings_round_trip_exactly(encoding, padding):
    rgb = random_rgb(seed=len(encoding) + padding)
    msg = image_msg(rgb, encoding, row_padding=padding)
    out = image_to_rgb(msg, TOPIC)
    assert_rgb_output(out, rgb.shape[:2], msg)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("encoding", GREY)
def test_grey_encodings_round_trip_exactly(encoding):
    grey = np.random.default_rng(3).integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    out = image_to_rgb(image_msg(rgb, encoding, row_padding=2), TOPIC)
    assert_rgb_output(out, grey.shape)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("encoding", CHROMA_SUBSAMPLED)
def test_yuv_encodings_round_trip_within_chroma_subsampling(encoding):
    rgb = smooth_rgb()
    out = image_to_rgb(image_msg(rgb, encoding, row_padding=4), TOPIC)
    assert_rgb_output(out, rgb.shape[:2])
    assert psnr(out, rgb) > 35


@pytest.mark.parametrize("encoding", BAYER)
def test_bayer_patterns_are_demosaiced_with_the_right_colours(encoding):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[:] = (200, 90, 30)  # a swapped pattern would turn this blue or green
    out = image_to_rgb(image_msg(rgb, encoding), TOPIC)
    assert_rgb_output(out, (8, 10))
    np.testing.assert_array_equal(out, rgb)
    assert psnr(image_to_rgb(image_msg(smooth_rgb(), encoding), TOPIC), smooth_rgb()) > 30


@pytest.mark.parametrize(
    ("encoding", "order"), [("uyvy", "UYVY"), ("yuv422", "UYVY"), ("yuyv", "YUYV"), ("yuv422_yuy2", "YUYV")]
)
def test_yuv422_byte_order_follows_image_encodings_h(encoding, order):
    """Hand-built bytes, independent of OpenCV's encoder: ROS `yuv422` is UYVY, `yuv422_yuy2` is YUYV."""
    y, u, v = 81, 90, 240  # BT.601 studio-range red
    values = {"Y": y, "U": u, "V": v}
    pixel_pair = bytes(values[c] for c in order)
    msg = SimpleNamespace(height=2, width=4, encoding=encoding, is_bigendian=0, step=8, data=pixel_pair * 4)
    out = image_to_rgb(msg, TOPIC)
    assert (out[:, :, 0] > 200).all() and (out[:, :, 1] < 40).all() and (out[:, :, 2] < 40).all()


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_respects_is_bigendian(bigendian):
    values = np.array([[0x0102, 0xFF00, 0x8040]], dtype=">u2" if bigendian else "<u2")
    msg = SimpleNamespace(height=1, width=3, encoding="mono16", is_bigendian=bigendian, step=6, data=values.tobytes())
    assert image_to_rgb(msg, TOPIC)[0, :, 0].tolist() == [0x01, 0xFF, 0x80]


@settings(derandomize=True, max_examples=25, deadline=None)
@given(
    encoding=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgra16"]),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    padding=st.integers(0, 7),
    bigendian=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_lossless_round_trip_any_size_padding_and_endianness(encoding, height, width, padding, bigendian, seed):
    rgb = random_rgb(height, width, seed)
    msg = image_msg(rgb, encoding, row_padding=padding, is_bigendian=bigendian)
    np.testing.assert_array_equal(image_to_rgb(msg, TOPIC), rgb)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "ndarray", "array", "list"])
def test_data_may_be_any_byte_container(kind):
    rgb = random_rgb()
    fields = rgb_to_image_msg_fields(rgb, "bgr8", row_padding=1)
    raw = fields["data"].tobytes()
    fields["data"] = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "ndarray": np.frombuffer(raw, np.uint8),
        "array": array.array("B", raw),  # what rclpy hands over
        "list": list(raw),
    }[kind]
    np.testing.assert_array_equal(image_to_rgb(SimpleNamespace(**fields), TOPIC), rgb)


def test_payload_keeps_metadata_and_a_zero_copy_view():
    rgb = random_rgb()
    msg = image_msg(rgb, "rgb8")
    payload = frame_payload(msg, TOPIC)
    assert isinstance(payload, FramePayload) and not payload.compressed
    assert (payload.topic, payload.encoding, payload.height, payload.width) == (TOPIC, "rgb8", 6, 8)
    assert payload.stamp_ns == 12 * 10**9 + 345 and payload.frame_id == "camera"
    assert np.shares_memory(payload.data, msg.data)
    assert payload.nbytes == rgb.nbytes


# ---- compressed ------------------------------------------------------------------------------------------------


def compressed_msg(fmt, data):
    return through_cdr(CompressedImage(header=header(), format=fmt, data=np.frombuffer(data, np.uint8)))


def test_jpeg_round_trips_within_psnr():
    rgb = smooth_rgb()
    msg = through_cdr(CompressedImage(header=header(), **rgb_to_compressed_msg_fields(rgb, "jpeg", quality=90)))
    assert msg.format == "rgb8; jpeg compressed bgr8"
    out = image_to_rgb(msg, TOPIC)
    assert_rgb_output(out, rgb.shape[:2])
    assert psnr(out, rgb) > 35


def test_png_round_trips_exactly():
    rgb = random_rgb(20, 30)
    msg = through_cdr(CompressedImage(header=header(), **rgb_to_compressed_msg_fields(rgb, "png")))
    np.testing.assert_array_equal(image_to_rgb(msg, TOPIC), rgb)


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("jpeg", "jpeg"),
        ("png", "png"),
        ("rgb8; jpeg compressed bgr8", "jpeg"),
        ("bgr8; png compressed bgr8", "png"),
        ("bgr8; compressed bgr8", "jpeg"),
        ("bgr8; compressed bgr8", "png"),
        ("", "png"),
    ],
)
def test_ros_format_strings_are_understood(fmt, codec):
    rgb = random_rgb(16, 16)
    data = encode_png(rgb) if codec == "png" else encode_jpeg(rgb, 95)
    payload = frame_payload(compressed_msg(fmt, data), TOPIC)
    assert payload.codec == codec and payload.stamp_ns == 12 * 10**9 + 345
    out = decode_frame(payload)
    assert_rgb_output(out, (16, 16))
    if codec == "png":
        np.testing.assert_array_equal(out, rgb)


def test_grey_png_decodes_to_rgb():
    grey = np.random.default_rng(5).integers(0, 256, (9, 11), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", grey)
    assert ok
    out = image_to_rgb(compressed_msg("mono8; png compressed mono8", buf.tobytes()), TOPIC)
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_payload_capture_never_decodes_and_corrupt_jpeg_fails_only_at_decode(monkeypatch):
    corrupt = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # JPEG magic, garbage body
    raw = image_msg(random_rgb(), "bgr8")

    def forbidden(*args, **kwargs):
        raise AssertionError("frame_payload must not decode")

    with monkeypatch.context() as patch:
        patch.setattr(cv2, "imdecode", forbidden)
        patch.setattr(cv2, "cvtColor", forbidden)
        payload = frame_payload(compressed_msg("rgb8; jpeg compressed bgr8", corrupt), TOPIC)
        raw_payload = frame_payload(raw, TOPIC)
    assert payload.codec == "jpeg" and raw_payload.encoding == "bgr8"
    with pytest.raises(ConversionError, match=f"^{TOPIC}: cannot decode jpeg"):
        decode_frame(payload)


# ---- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["32FC1", "bayer_rggb16", "nv24", "RGB8", "jpeg"])
def test_unsupported_encoding_names_topic_encoding_and_supported_list(encoding):
    msg = SimpleNamespace(height=2, width=2, encoding=encoding, is_bigendian=0, step=8, data=bytes(16))
    with pytest.raises(ConversionError) as info:
        frame_payload(msg, TOPIC)
    text = str(info.value)
    assert text.startswith(TOPIC) and repr(encoding) in text
    assert all(name in text for name in ("rgb8", "bgr8", "mono16", "yuv422", "uyvy", "nv12"))
    assert len(RAW_ENCODINGS) == text.count(",") + 1


@pytest.mark.parametrize("fmt", ["16UC1; compressedDepth png", "h264", "bgr8; compressed bgr8"])
def test_unsupported_compressed_formats_are_named(fmt):
    data = b"\x89PNG\r\n\x1a\n" + bytes(20) if "compressedDepth" in fmt else b"\x00\x00\x00\x01gd"
    with pytest.raises(ConversionError, match=r"unsupported CompressedImage format .*supported: jpeg, png") as info:
        frame_payload(compressed_msg(fmt, data), TOPIC)
    assert str(info.value).startswith(TOPIC) and repr(fmt) in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data": bytes(47)}, "47 data bytes, expected step 24 x 2 rows = 48"),
        ({"data": bytes(60)}, "60 data bytes"),
        ({"step": 5}, "step 5 < width 8 x 3"),
        ({"width": 0, "step": 0, "data": b""}, "0x2 pixels"),
        ({"encoding": "uyvy", "width": 3, "step": 6, "data": bytes(12)}, "needs even dimensions"),
    ],
)
def test_malformed_images_are_rejected(fields, message):
    base = {"height": 2, "width": 8, "encoding": "rgb8", "is_bigendian": 0, "step": 24, "data": bytes(48)}
    with pytest.raises(ConversionError, match=f"^{TOPIC}: malformed message: .*{message}"):
        frame_payload(SimpleNamespace(**{**base, **fields}), TOPIC)


def test_missing_padding_of_the_last_row_is_tolerated():
    rgb = random_rgb(3, 4)
    fields = rgb_to_image_msg_fields(rgb, "rgb8", row_padding=4)
    fields["data"] = fields["data"][:-4]
    np.testing.assert_array_equal(image_to_rgb(SimpleNamespace(**fields), TOPIC), rgb)


def test_empty_compressed_image_is_malformed():
    with pytest.raises(ConversionError, match="no data"):
        frame_payload(SimpleNamespace(format="jpeg", data=b""), TOPIC)
