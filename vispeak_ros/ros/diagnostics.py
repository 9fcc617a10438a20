"""What the node tells /diagnostics (diagnostic_msgs/DiagnosticArray), as diagnostic_updater would.

One status, `vispeak: assistant`, with level OK / WARN / ERROR and key-value figures: input rates per topic,
frames dropped and skipped, audio gaps, conversion errors, segment lag (wall minus stream time), model step
p50/p99, queue depths, backend, precision, checkpoint checksum, stop state. Rates are measured over a sliding
window, so the figures are current, not since start.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from pathlib import Path
from typing import Any

from vispeak_ros.ros.port import GraphPort

OK, WARN, ERROR, STALE = 0, 1, 2, 3
STATUS_NAME = "vispeak: assistant"
NS_PER_S = 1_000_000_000


class RateMeter:
    """Messages per second over the last `window_s` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_ns = round(window_s * NS_PER_S)
        self._stamps: deque[int] = deque()
        self.total = 0

    def tick(self, now_ns: int) -> None:
        self._stamps.append(now_ns)
        self.total += 1
        self._trim(now_ns)

    def rate(self, now_ns: int) -> float:
        self._trim(now_ns)
        if len(self._stamps) < 2:
            return 0.0
        span = max(now_ns - self._stamps[0], 1)
        return (len(self._stamps) - 1) * NS_PER_S / span

    def _trim(self, now_ns: int) -> None:
        while self._stamps and now_ns - self._stamps[0] > self.window_ns:
            self._stamps.popleft()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1)))]


class CheckpointChecksum:
    """SHA-256 of a checkpoint's safetensors files, computed on a background thread (a 7B checkpoint is ~15 GB:
    hashing it must not delay the node). `value` is "computing" until done."""

    def __init__(self, folder: Path) -> None:
        self.value = "computing"
        self._thread = threading.Thread(target=self._run, args=(folder,), name="vispeak-checksum", daemon=True)
        self._thread.start()

    def _run(self, folder: Path) -> None:
        digest = hashlib.sha256()
        try:
            files = sorted(folder.glob("*.safetensors"))
            for path in files:
                with path.open("rb") as handle:
                    while block := handle.read(1 << 22):
                        digest.update(block)
            self.value = f"sha256:{digest.hexdigest()[:16]}" if files else "no safetensors files"
        except OSError as error:
            self.value = f"unavailable ({error.strerror})"


def diagnostic_array(
    port: GraphPort, now_ns: int, level: int, message: str, values: dict[str, Any], hardware_id: str
) -> Any:
    from vispeak_ros.ros.messages import header

    key_values = [
        port.new_message("diagnostic_msgs/msg/KeyValue", key=key, value=_text(value)) for key, value in values.items()
    ]
    status = port.new_message(
        "diagnostic_msgs/msg/DiagnosticStatus",
        level=level,
        name=STATUS_NAME,
        message=message,
        hardware_id=hardware_id,
        values=key_values,
    )
    return port.new_message("diagnostic_msgs/msg/DiagnosticArray", header=header(port, now_ns, ""), status=[status])


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
