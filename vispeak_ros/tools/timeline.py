"""A picture of what the assistant did: the informative score against the trigger rule, answers, ground truth.

Drawn with OpenCV (already a dependency) into a PNG: per segment the informative probability (bars) and the
running sum of the last three (line) against the threshold, shaded ground-truth windows (timely answer range
[t1, t2 + 2 s] light, the event window darker), and a marker with the text of every answer where it started.
`timeline_html` draws the same as a self-contained HTML page (inline SVG, no script, no network): hovering a bar
or a marker shows its values and the answer's full text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
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


def timeline_html(
    scores: Sequence[ScorePoint],
    threshold: float,
    answers: Sequence[AnswerMark] = (),
    windows: Sequence[Window] = (),
    title: str = "",
    width: int = 1400,
) -> str:
    """The timeline as one self-contained HTML page (inline SVG; hover for values and full answer texts)."""
    left, right, top, plot_h = 60, 20, 30, 260
    height = top + plot_h + 50 + 20 * len(answers)
    duration = max([p.t for p in scores] + [w.t2 + TIMELY_MARGIN_S for w in windows] + [a.t for a in answers] + [1.0])
    y_max = max([1.0, threshold * 1.2] + [p.running_sum for p in scores])

    def x(t: float) -> float:
        return round(left + (width - left - right) * t / (duration + 1.0), 1)

    def y(value: float) -> float:
        return round(top + plot_h - plot_h * value / y_max, 1)

    bar = max(1.0, (x(1.0) - x(0.0)) * 0.6)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="12">']  # fmt: skip
    for w in windows:
        parts.append(
            f"<g><title>{escape(w.label)}: event [{w.t1:.2f}, {w.t2:.2f}] s, timely until "
            f'{w.t2 + TIMELY_MARGIN_S:.2f} s</title><rect x="{x(w.t1)}" y="{top}" '
            f'width="{x(w.t2 + TIMELY_MARGIN_S) - x(w.t1)}" height="{plot_h}" '
            f'fill="#e1f0e1"/><rect x="{x(w.t1)}" y="{top}" width="{x(w.t2) - x(w.t1)}" height="{plot_h}" '
            f'fill="#bee1be"/><text x="{x(w.t1) + 3}" y="{top + 14}" fill="#1e6e1e">{escape(w.label)}</text></g>'
        )
    for p in scores:
        colour = "#dc3c3c" if p.triggered else "#7896dc"
        parts.append(
            f'<rect x="{x(p.t) - bar / 2:.1f}" y="{y(p.probability)}" width="{bar:.1f}" '
            f'height="{max(0.0, y(0) - y(p.probability)):.1f}" fill="{colour}"><title>{p.t:.1f} s: probability '
            f"{p.probability:.3f}, sum {p.running_sum:.3f}{' (triggered)' if p.triggered else ''}</title></rect>"
        )
    if scores:
        points = " ".join(f"{x(p.t)},{y(p.running_sum)}" for p in scores)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#282828" stroke-width="2"/>')
    parts.append(f'<line x1="{left}" y1="{y(threshold)}" x2="{width - right}" y2="{y(threshold)}" stroke="#c80000"/>'
                 f'<text x="{width - right - 110}" y="{y(threshold) - 4}" fill="#c80000">threshold {threshold:g}</text>'
                 f'<line x1="{left}" y1="{y(0)}" x2="{width - right}" y2="{y(0)}" stroke="black"/>')  # fmt: skip
    for second in range(0, int(duration) + 2, 5):
        parts.append(f'<line x1="{x(second)}" y1="{y(0)}" x2="{x(second)}" y2="{y(0) + 5}" stroke="black"/>'
                     f'<text x="{x(second) - 8}" y="{y(0) + 18}">{second}s</text>')  # fmt: skip
    for row, a in enumerate(answers):
        text_y = top + plot_h + 42 + 20 * row
        label = f"{a.t:6.1f}s  {a.label + ': ' if a.label else ''}{a.text}"
        anchor = "end" if x(a.t) > width * 0.7 else "start"
        text_x = x(a.t) - 4 if anchor == "end" else x(a.t) + 4
        parts.append(
            f'<g><title>{escape(label)}</title><line x1="{x(a.t)}" y1="{top}" x2="{x(a.t)}" y2="{text_y - 10}" '
            f'stroke="#a000a0"/><text x="{text_x}" y="{text_y}" fill="#780078" text-anchor="{anchor}">'
            f"{escape(label if len(label) <= 150 else label[:147] + '...')}</text></g>"
        )
    parts.append("</svg>")
    legend = "bars: informative probability (red = triggered); line: sum of the last 3; green: ground truth"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title or "timeline")}</title>'
        '</head>\n<body style="font-family:sans-serif">\n'
        f"<h3>{escape(title)}</h3>\n{''.join(parts)}\n<p>{escape(legend)}</p>\n</body></html>\n"
    )


def save_timeline_html(path: str | Path, page: str) -> Path:
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
