"""Damaged and hostile files: recordings (bit-flipped, wrong format), checkpoints (a pickle offered as safetensors,
bad indexes, wrong dtypes, bit flips) and ONNX exports. Each gives one clear line (or, for a recording, what could
be read plus what was skipped), never an uncaught traceback, and never runs code from the file: the pickles here
would create a marker file if anything unpickled them.

Already covered elsewhere: truncated MCAP and a corrupt chunk (test/tools/test_replay.py), a `.bin` pickle refused
by name, a corrupt safetensors header, missing / unexpected keys (test/model/test_loader.py), a truncated TensorRT
engine (test/engines).
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from vispeak_ros import data
from vispeak_ros.model import CheckpointError, load_checkpoint
from vispeak_ros.tools.bag_source import RecordingError, open_recording, read_segments

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MCAP = data.demo_recording() / "demo_recording.mcap"


class Payload:
    """Unpickling this creates `path`: proof that something ran code from a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "code-ran-from-a-file"
    yield path
    assert not path.exists(), "a file's code ran"


def pickled(marker: Path) -> bytes:
    return pickle.dumps({"weight": Payload(marker)})


def torch_saved(marker: Path, tmp_path: Path) -> bytes:
    """What `torch.save` writes (a zip holding a pickle), with the payload inside."""
    path = tmp_path / "saved.pt"
    torch.save({"weight": Payload(marker)}, path)
    return path.read_bytes()


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message, message
    return message


# ---------------------------------------------------------------------------------------------- recordings


def read_all(path: Path) -> list:
    return list(read_segments(open_recording(path)))


def _sqlite_bag(folder: Path, db: bytes) -> Path:
    folder.mkdir()
    (folder / "metadata.yaml").write_text((data.demo_recording() / "metadata.yaml").read_text()
                                          .replace("storage_identifier: mcap", "storage_identifier: sqlite3")
                                          .replace("demo_recording.mcap", "demo_recording_0.db3"))  # fmt: skip
    (folder / "demo_recording_0.db3").write_bytes(db)
    return folder


WRONG_FORMATS = {
    "a PNG named .mcap": lambda tmp: _write(tmp / "x.mcap", b"\x89PNG\r\n\x1a\n" + bytes(100)),
    "an empty .mcap": lambda tmp: _write(tmp / "x.mcap", b""),
    "text named .mcap": lambda tmp: _write(tmp / "x.mcap", b"hello, not a recording\n" * 10),
    "a zip named .mcap": lambda tmp: _zip(tmp / "x.mcap"),
    "only the MCAP magic": lambda tmp: _write(tmp / "x.mcap", b"\x89MCAP0\r\n"),
    "a folder with binary metadata.yaml": lambda tmp: _folder(tmp / "bag", {"metadata.yaml": b"\xff\xfe\x00\x01"}),
    "a folder with metadata.yaml of a list": lambda tmp: _folder(tmp / "bag", {"metadata.yaml": b"- 1\n- 2\n"}),
    "a folder with a YAML python tag": lambda tmp: _folder(
        tmp / "bag", {"metadata.yaml": f"!!python/object/apply:os.system ['touch {tmp}/yaml-ran']\n".encode()}
    ),
    "an sqlite3 bag whose .db3 is text": lambda tmp: _sqlite_bag(tmp / "bag", b"not sqlite at all\n" * 100),
    "an sqlite3 bag whose .db3 is an MCAP": lambda tmp: _sqlite_bag(tmp / "bag", DEMO_MCAP.read_bytes()[:4096]),
    "an empty folder": lambda tmp: _folder(tmp / "bag", {}),
}


def _write(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "zip")
    return path


def _folder(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir()
    for name, blob in files.items():
        (path / name).write_bytes(blob)
    return path


@pytest.mark.parametrize("kind", sorted(WRONG_FORMATS))
def test_a_recording_of_the_wrong_format_fails_with_one_line_naming_it(kind, tmp_path) -> None:
    path = WRONG_FORMATS[kind](tmp_path)
    with pytest.raises(RecordingError) as error:
        read_all(path)
    assert str(path) in one_line(error.value)
    assert not (tmp_path / "yaml-ran").exists()


def test_replay_of_a_wrong_format_recording_exits_1_with_one_line_and_no_traceback(tmp_path) -> None:
    path = WRONG_FORMATS["a PNG named .mcap"](tmp_path)
    done = subprocess.run([sys.executable, "-m", "vispeak_ros.tools.replay", str(path), "--output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                          check=False)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines[-1].startswith("vispeak-replay: error: ") and str(path) in lines[-1]
    assert "Traceback" not in done.stderr


FLIPS = st.lists(
    st.one_of(
        st.integers(0, 4096 * 8 - 1),  # the header, schemas and channels, the first chunk's header
        st.integers(-4096 * 8, -1),  # the summary: chunk indexes, statistics, footer
        st.integers(0, DEMO_MCAP.stat().st_size * 8 - 1),  # anywhere, messages included
    ),
    min_size=1,
    max_size=16,
)


@settings(max_examples=40, database=None)
@given(bits=FLIPS)
def test_a_bit_flipped_mcap_reads_what_it_can_or_fails_with_one_line(bits, tmp_path_factory) -> None:
    raw = bytearray(DEMO_MCAP.read_bytes())
    for bit in bits:
        at = bit % (len(raw) * 8)
        raw[at // 8] ^= 1 << (at % 8)
    path = tmp_path_factory.mktemp("flipped") / "flipped.mcap"
    path.write_bytes(bytes(raw))
    try:
        recording = open_recording(path)
        segments = list(read_segments(recording))
    except RecordingError as error:
        assert str(path) in one_line(error)
        return
    assert len(segments) <= 64 and all("\n" not in problem for problem in recording.problems)


def test_replay_of_a_bit_flipped_mcap_finishes_and_reports_what_it_skipped(tmp_path) -> None:
    from vispeak_ros.tools.replay import replay

    raw = bytearray(DEMO_MCAP.read_bytes())
    rng = np.random.default_rng(12)
    for at in rng.integers(0, len(raw), 64):
        raw[at] ^= 0xFF
    path = tmp_path / "flipped.mcap"
    path.write_bytes(bytes(raw))
    result = replay(path, output_dir=tmp_path / "out", out=None, progress=False)
    assert result.bag.exists() and all("\n" not in line for line in result.skipped)


# ---------------------------------------------------------------------------------------------- checkpoints


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A copy of the bundled demo checkpoint to damage."""
    return Path(shutil.copytree(data.demo_checkpoint(), tmp_path / "checkpoint"))


def load_error(path: Path) -> str:
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    return one_line(error.value)


@pytest.mark.parametrize("maker", ["pickle", "torch.save"])
def test_a_pickle_in_place_of_model_safetensors_is_refused_unopened(maker, checkpoint, marker, tmp_path) -> None:
    blob = pickled(marker) if maker == "pickle" else torch_saved(marker, tmp_path)
    (checkpoint / "model.safetensors").write_bytes(blob)
    assert "model.safetensors: not a readable safetensors file" in load_error(checkpoint)


def test_a_pickle_named_as_a_shard_is_refused_unopened(checkpoint, marker) -> None:
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "model-00001-of-00001.safetensors").write_bytes(pickled(marker))
    (checkpoint / "evil.bin").write_bytes(pickled(marker))
    index = checkpoint / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors"}}))
    assert "not a readable safetensors file" in load_error(checkpoint)
    index.write_text(json.dumps({"weight_map": {"a": "evil.bin"}}))
    assert "refused" in load_error(checkpoint) and "pickle" in load_error(checkpoint)


def test_the_node_refuses_a_pickled_checkpoint_with_one_line(checkpoint, marker, make_node) -> None:
    from vispeak_ros.ros.node import NodeError, VispeakNode

    (checkpoint / "model.safetensors").write_bytes(pickled(marker))
    node = VispeakNode(make_node("vispeak", parameter_overrides={"checkpoint": str(checkpoint),
                                                                  "audio_flavour": "none"}))  # fmt: skip
    with pytest.raises(NodeError, match=r"cannot load the model: .*not a readable safetensors file") as error:
        node.configure()
    one_line(error.value)


INDEXES = {
    "binary garbage": (b"\xff\xfe\x00garbage", "cannot read"),
    "not JSON": (b"{weight_map: ", "cannot read"),
    "a JSON list": (b"[1, 2]", "expected a JSON object"),
    "no weight_map": (b'{"metadata": {}}', "no weight_map"),
    "a shard elsewhere": (b'{"weight_map": {"a": "../../../etc/passwd"}}', "is not a file name in the checkpoint"),
    "an absolute shard": (b'{"weight_map": {"a": "/etc/passwd"}}', "is not a file name in the checkpoint"),
    "a number for a shard": (b'{"weight_map": {"a": 5}}', "is not a file name in the checkpoint"),
    "a missing shard": (b'{"weight_map": {"a": "model-00002-of-00002.safetensors"}}', "which is missing"),
}


@pytest.mark.parametrize("kind", sorted(INDEXES))
def test_a_bad_shard_index_is_one_line(kind, checkpoint) -> None:
    blob, expected = INDEXES[kind]
    (checkpoint / "model.safetensors.index.json").write_bytes(blob)
    message = load_error(checkpoint)
    assert expected in message and "model.safetensors.index.json" in message


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.uint8])
def test_integer_weights_where_the_model_wants_floats_are_refused(dtype, checkpoint) -> None:
    path = checkpoint / "model.safetensors"
    state = load_file(str(path))
    state["informative_head.0.bias"] = state["informative_head.0.bias"].to(dtype)
    save_file(state, str(path))
    assert "1 wrong dtype(s): informative_head.0.bias is " in load_error(checkpoint)


def test_float16_weights_load_as_a_lower_precision_not_a_wrong_dtype(checkpoint) -> None:
    path = checkpoint / "model.safetensors"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}, str(path))
    assert load_checkpoint(checkpoint).dtype == torch.float16


CHECKPOINT_FILES = sorted(p.relative_to(data.demo_checkpoint()).as_posix()
                          for p in data.demo_checkpoint().rglob("*") if p.is_file())  # fmt: skip


@settings(max_examples=30, database=None)
@given(name=st.sampled_from(CHECKPOINT_FILES), bits=st.lists(st.integers(0, 512 * 8 - 1), min_size=1, max_size=8))
def test_a_bit_flipped_checkpoint_loads_or_fails_with_one_line(name, bits, tmp_path_factory) -> None:
    root = Path(shutil.copytree(data.demo_checkpoint(), tmp_path_factory.mktemp("flipped") / "checkpoint"))
    path = root / name
    raw = bytearray(path.read_bytes())
    for bit in bits:  # within the first 512 bytes: headers, JSON and YAML text
        at = bit % (len(raw) * 8)
        raw[at // 8] ^= 1 << (at % 8)
    path.write_bytes(bytes(raw))
    try:
        load_checkpoint(root)
    except CheckpointError as error:
        one_line(error)


# ---------------------------------------------------------------------------------------------- ONNX exports


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo checkpoint's ONNX export (manifest.json, graphs, embeddings)."""
    from vispeak_ros.engines.export import export_onnx
    from vispeak_ros.runtime.backends.artifacts import model_checksum

    folder = tmp_path_factory.mktemp("export") / "onnx"
    checksum = model_checksum(data.demo_checkpoint())
    export_onnx(load_checkpoint(data.demo_checkpoint()), folder, checksum=checksum)
    return folder


def _manifest(change):
    def damage(folder: Path, marker: Path) -> None:
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return damage


def _replace(name: str, make):
    """Replace an export file by `make(size, marker)` bytes of the same size (the manifest's size check passes)."""

    def damage(folder: Path, marker: Path) -> None:
        path = folder / name
        size = path.stat().st_size
        blob = make(size, marker)
        path.write_bytes(blob[:size].ljust(size, b"\0"))

    return damage


EXPORT_DAMAGE = {
    "manifest not JSON": lambda folder, marker: (folder / "manifest.json").write_bytes(b"\xff{"),
    "manifest of another format": _manifest(lambda m: m.update(format=99)),
    "manifest without graphs": _manifest(lambda m: m.pop("graphs")),
    "manifest naming a file elsewhere": _manifest(lambda m: m["graphs"]["vision"].update(file="../../etc/passwd")),
    "graph missing": lambda folder, marker: (folder / "llm_step.onnx").unlink(),
    "graph truncated": lambda folder, marker: (folder / "llm_step.onnx").write_bytes(
        (folder / "llm_step.onnx").read_bytes()[:1000]
    ),
    "graph of garbage, same size": _replace(
        "llm_step.onnx", lambda size, marker: bytes(range(256)) * (size // 256 + 1)
    ),
    "graph replaced by a pickle": _replace("vision.onnx", lambda size, marker: pickled(marker)),
    "embeddings replaced by a pickle": _replace("embeddings.safetensors", lambda size, marker: pickled(marker)),
}


@pytest.mark.parametrize("kind", sorted(EXPORT_DAMAGE))
def test_a_damaged_onnx_export_stops_the_node_with_one_line(kind, export, marker, make_node, tmp_path) -> None:
    from vispeak_ros.ros.node import NodeError, VispeakNode

    folder = Path(shutil.copytree(export, tmp_path / "onnx"))
    EXPORT_DAMAGE[kind](folder, marker)
    overrides = {"backend": "onnxruntime", "ort_provider": "cpu", "engine_dir": str(folder), "audio_flavour": "none"}
    node = VispeakNode(make_node("vispeak", parameter_overrides=overrides))
    with pytest.raises(NodeError, match="cannot load the model: ") as error:
        node.configure()
    one_line(error.value)


def test_the_undamaged_export_loads(export, make_node, tmp_path) -> None:
    """The control: the damage above, not the set-up, is what the node refused."""
    from vispeak_ros.ros.node import VispeakNode

    overrides = {"backend": "onnxruntime", "ort_provider": "cpu", "engine_dir": str(export), "audio_flavour": "none"}
    node = VispeakNode(make_node("vispeak", parameter_overrides=overrides))
    node.configure()
    assert node.assistant.backend.name == "onnxruntime"
    node.shutdown()
