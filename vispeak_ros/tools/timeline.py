"""A picture of what the assistant did: the informative score against the trigger rule, answers, ground truth.

Drawn with OpenCV (already a dependency) into a PNG: per segment the informative probability (bars) and the
running sum of the last three (line) against the threshold, shaded ground-truth windows (timely answer range
[t1, t2 + 2 s] light, the event window darker), and a marker with the text of every answer where it started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

TIMELY_MARGIN_S = 2.0


@dataclass(frozen=True)
class ScorePoint:
    t: float  # stream seconds from the start of the recording
    probability: float
    running_sum: float
    triggered: bool


@dataclass(frozen=True)
class AnswerMark:
    t: float
    text: str
    label: str = ""  # e.g. the event type


@dataclass(frozen=True)
class Window:
    t1: float
    t2: float
    label: str


def draw_timeline(
    scores: Sequence[ScorePoint],
    threshold: float,
    answers: Sequence[AnswerMark] = (),
    windows: Sequence[Window] = (),
    title: str = "",
    width: int = 1400,
) -> np.ndarray:
    """The timeline as an RGB uint8 image."""
    import cv2

    left, right, top, plot_h = 60, 20, 40, 240
    height = top + plot_h + 60 + 22 * len(answers)
    image = np.full((height, width, 3), 255, np.uint8)
    duration = max([p.t for p in scores] + [w.t2 + TIMELY_MARGIN_S for w in windows] + [a.t for a in answers] + [1.0])
    y_max = max(1.0, threshold * 1.2, *(p.running_sum for p in scores)) if scores else max(1.0, threshold * 1.2)

    def x(t: float) -> int:
        return left + round((width - left - right) * t / (duration + 1.0))

    def y(value: float) -> int:
        return top + plot_h - round(plot_h * value / y_max)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for window in windows:
        cv2.rectangle(image, (x(window.t1), top), (x(window.t2 + TIMELY_MARGIN_S), top + plot_h), (225, 240, 225), -1)
        cv2.rectangle(image, (x(window.t1), top), (x(window.t2), top + plot_h), (190, 225, 190), -1)
        cv2.putText(image, window.label, (x(window.t1) + 3, top + 14), font, 0.4, (30, 110, 30), 1, cv2.LINE_AA)
    for point in scores:
        colour = (220, 60, 60) if point.triggered else (120, 150, 220)
        cv2.rectangle(image, (x(point.t) - 3, y(point.probability)), (x(point.t) + 3, y(0)), colour, -1)
    for a, b in pairwise(scores):
        cv2.line(image, (x(a.t), y(a.running_sum)), (x(b.t), y(b.running_sum)), (40, 40, 40), 2, cv2.LINE_AA)
    cv2.line(image, (left, y(threshold)), (width - right, y(threshold)), (200, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"threshold {threshold:g}", (width - right - 130, y(threshold) - 5), font, 0.4, (200, 0, 0))
    cv2.line(image, (left, y(0)), (width - right, y(0)), (0, 0, 0), 1)
    for second in range(0, int(duration) + 2, 5):
        cv2.line(image, (x(second), y(0)), (x(second), y(0) + 5), (0, 0, 0), 1)
        cv2.putText(image, f"{second}s", (x(second) - 8, y(0) + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for row, answer in enumerate(answers):
        text_y = top + plot_h + 50 + 22 * row
        cv2.line(image, (x(answer.t), top), (x(answer.t), text_y - 12), (160, 0, 160), 1)
        label = f"{answer.t:6.1f}s  {answer.label + ': ' if answer.label else ''}{answer.text}"[:150]
        (text_w, _), _ = cv2.getTextSize(label, font, 0.45, 1)
        text_x = min(x(answer.t) + 4, width - right - text_w)  # keep the whole label inside the picture
        cv2.putText(image, label, (max(left, text_x), text_y), font, 0.45, (120, 0, 120), 1, cv2.LINE_AA)
    legend = "bars: informative probability (red = triggered)   line: sum of last 3   green: ground truth"
    cv2.putText(image, title, (left, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, legend, (left, height - 10), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    return image


def save_timeline(path: str | Path, image: np.ndarray) -> Path:
    import cv2

    path = Path(path)
    if not cv2.imwrite(str(path), image[:, :, ::-1]):
        raise OSError(f"could not write the timeline picture to {path}")
    return path
