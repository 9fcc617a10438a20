"""A one-line progress bar on stderr: how much stream was replayed and how fast (x realtime), no dependency.

It redraws in place with a carriage return, at most ten times a second, and only on a terminal unless forced:
redirected stderr (CI logs, tests) then gets one final summary line instead of hundreds of partial ones;
`enabled=False` draws nothing at all.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`update(stream_s)` as the replay advances, `finish()` at the end."""

    def __init__(
        self,
        total_s: float | None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
        min_interval_s: float = 0.1,
        label: str = "replay",
    ) -> None:
        self.total_s = total_s if total_s and total_s > 0 else None
        self.stream = stream if stream is not None else sys.stderr
        self.live = enabled if enabled is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.silent = enabled is False  # never draw, not even the final line
        self.width = width
        self.min_interval_s = min_interval_s
        self.label = label
        self.started = time.perf_counter()
        self.stream_s = 0.0
        self._last_draw = 0.0
        self._drawn = False

    @property
    def speed(self) -> float:
        """Stream seconds per wall second so far (x realtime)."""
        wall = time.perf_counter() - self.started
        return self.stream_s / wall if wall > 0 else 0.0

    def line(self) -> str:
        speed = self.speed
        if self.total_s is None:
            return f"{self.label}: {self.stream_s:7.1f} s of stream  {speed:5.1f}x realtime"
        fraction = min(1.0, self.stream_s / self.total_s)
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        eta = (self.total_s - self.stream_s) / speed if speed > 0 else float("inf")
        eta_text = f"ETA {eta:4.0f} s" if eta != float("inf") else "ETA    ? s"
        return (
            f"{self.label} [{bar}] {self.stream_s:6.1f}/{self.total_s:.1f} s  {speed:5.1f}x realtime  "
            f"{eta_text if fraction < 1.0 else 'done      '}"
        )

    def update(self, stream_s: float) -> None:
        if self.total_s is not None:
            stream_s = min(stream_s, self.total_s)  # the last segment may end after the last message
        self.stream_s = max(self.stream_s, stream_s)
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        self.stream.write("\r" + self.line())
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the bar (before other output is printed on the same terminal)."""
        if self.live and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        if self.silent:
            return
        self.stream.write(("\r" if self.live else "") + self.line() + "\n")
        self.stream.flush()
