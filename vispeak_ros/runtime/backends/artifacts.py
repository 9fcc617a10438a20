"""Where built model artifacts (ONNX exports, later TensorRT engines) live and how they are recognised.

Read by the backends at run time and written by `vispeak_ros.engines` offline (which imports this module, never the
other way round). An export folder holds `manifest.json`: the checkpoint's checksum, the graphs, their sha256, and
the lower-precision variants with their agreement-gate verdicts.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ArtifactError(RuntimeError):
    """Built artifacts are missing, stale or unusable; the message names the path and what to run."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_checksum(checkpoint: str | Path) -> str:
    """sha256 over every regular file below the checkpoint folder (relative names and contents, sorted)."""
    root = Path(checkpoint)
    if not root.is_dir():
        raise ArtifactError(f"checkpoint folder not found: {root}")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def checkpoint_stats(checkpoint: str | Path) -> dict[str, list[int]]:
    """Relative name -> [size, mtime_ns] of every regular file below the checkpoint folder: recorded at export so
    that a start can recognise an unchanged checkpoint without hashing it (15 GB for the 7B model)."""
    root = Path(checkpoint)
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        out[path.relative_to(root).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return out


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/vispeak_ros/engines` (default ~/.cache/...): where built graphs and engines live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vispeak_ros" / "engines"


def default_onnx_dir(checksum: str, root: str | Path | None = None) -> Path:
    """`<root>/onnx/<checksum[:16]>`: one export folder per checkpoint content."""
    return Path(root or cache_root()) / "onnx" / checksum[:16]


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"no ONNX export at {folder} ({MANIFEST} missing; run vispeak-build-engine --format onnx --checkpoint DIR)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}: not valid JSON ({error.msg})") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format {manifest.get('format')!r}; this version reads {FORMAT_VERSION}")
    return manifest


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> None:
    """Record every file's sha256 and size, then write the manifest (sorted keys: reproducible bytes)."""
    folder = Path(folder)
    files = sorted(path for path in folder.iterdir() if path.is_file() and path.name != MANIFEST)
    manifest["files"] = {path.name: file_sha256(path) for path in files}
    manifest["file_sizes"] = {path.name: path.stat().st_size for path in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def find_onnx_export(checkpoint: str | Path, engine_dir: str | Path | None = None) -> Path:
    """The export folder for this checkpoint: `engine_dir` itself when it holds a manifest, else one below
    `<engine_dir or cache_root()>/onnx/`. Fast path: a manifest whose recorded checkpoint file stats (names, sizes,
    mtimes) equal the checkpoint's is taken without hashing; otherwise the checkpoint is hashed and must match the
    manifest's checksum (a copied checkpoint with new mtimes still matches, only slower)."""
    given = Path(engine_dir) if engine_dir else None
    direct = given is not None and (given / MANIFEST).is_file()
    root = given if given is not None else cache_root()
    candidates = [given] if direct else sorted(p.parent for p in (root / "onnx").glob(f"*/{MANIFEST}"))
    stats = checkpoint_stats(checkpoint) if Path(checkpoint).is_dir() else None
    for folder in candidates:
        try:
            manifest = read_manifest(folder)
        except ArtifactError:
            if direct:
                raise
            continue
        if stats and manifest.get("checkpoint_files") == stats:
            return folder
    checksum = model_checksum(checkpoint)
    folder = given if direct else default_onnx_dir(checksum, root)
    manifest = read_manifest(folder)
    if manifest.get("model_checksum") != checksum:
        raise ArtifactError(
            f"{folder}: exported from another checkpoint (checksum {str(manifest.get('model_checksum'))[:16]}, "
            f"{checkpoint} is {checksum[:16]}); re-export with vispeak-build-engine --format onnx"
        )
    return folder
