"""ViSpeak-Bench scores: time accuracy, judged text score, Visual Reference accuracy, overall.

Definitions (the paper's, as the released scorer HumanMLLM/ViSpeak-Bench `src/count.py` computes them):
- **time accuracy**: an answer is in time iff `max(0, t1) <= response_time <= t2 + 2.0` (bounds inclusive), t1, t2 the
  ground-truth `timespan` of the item's last answer; accuracy = in-time answers / items;
- **text score** (0-5, from the LLM judge) averaged over the in-time answers only;
- **Visual Reference**: the option letter read from the answer (the first capital A-E, after dropping a few lead-in
  phrases; an answer of more than 10 words without one counts as no letter) compared with `ans`; score = accuracy x 5.
  A stricter reading (a leading letter, or exactly one option's text named) is reported beside it, not in the overall;
- **overall** = mean over the 7 subtasks of: the Visual Reference score, and time accuracy x text score for the six
  timed ones (this gives 2.76 for ViSpeak and 2.99 for GPT-4o from the paper's per-subtask table: `PAPER_TABLE`).

Defaults fix the released scorer's bugs; `official_quirks=True` reproduces them:

- a clip with no answer (`null` time or empty text): default, not in time and not judged; quirks, its reported
  time is checked like any other and an empty text is judged as "null";
- denominator: default, every annotated clip (a missing prediction is a miss); quirks, the entries of the
  predictions file (duplicates count twice);
- an in-time answer without a verdict: default, left out of the text average (and reported); quirks, it counts 0
  once a judge has run (the released scorer's exceptions drop it after counting it); no verdicts at all: no text
  score in either mode;
- Visual Reference lead-in phrases: default, the eight it lists; quirks, as its code has them (two missing commas
  fuse two pairs into strings that never occur, so "Best answer: C" reads as B).

Not reproduced in either mode: the released scorer passes the dialogue to its judge under a wrong keyword, which
raises inside a try block, so it records no text score for any answer at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from vispeak_ros.evaluation.annotations import Item
from vispeak_ros.evaluation.predictions import Prediction, PredictionError
from vispeak_ros.evaluation.tasks import BY_CODE, TASKS, Task

MARGIN_S = 2.0  # the same margin after t2 for every timed subtask

# Lead-in phrases the released scorer removes before looking for the letter (as intended)...
_LEAD_INS = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
# ...and as its list literally is: two missing commas fuse two pairs into strings that never occur.
_LEAD_INS_RELEASED = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is" + "The correct option is",
    "Best answer:" + "Best option:",
)

# The paper's per-subtask results (arXiv 2503.12769, ViSpeak-Bench table; also in shared/spec/vispeak.md):
# time accuracy in % and text score for the six timed subtasks, and the Visual Reference score (accuracy x 5).
PAPER_TABLE: dict[str, dict[str, dict[str, float]]] = {
    "ViSpeak": {
        "time_accuracy": {"aw": 56.5, "vi": 72.0, "hr": 83.0, "vw": 93.0, "vt": 79.0, "gu": 99.0},
        "text_score": {"vr": 3.75, "aw": 2.63, "vi": 3.84, "hr": 1.07, "vw": 4.95, "vt": 3.15, "gu": 3.36},
    },
    "GPT-4o": {
        "time_accuracy": {"aw": 48.5, "vi": 82.0, "hr": 96.0, "vw": 99.0, "vt": 100.0, "gu": 99.5},
        "text_score": {"vr": 3.18, "aw": 2.27, "vi": 3.53, "hr": 1.71, "vw": 5.00, "vt": 4.98, "gu": 2.22},
    },
}
PAPER_OVERALL = {"ViSpeak": 2.76, "GPT-4o": 2.99}


def in_time(response_time: float | None, timespan: tuple[float, float], margin: float = MARGIN_S) -> bool:
    """`max(0, t1) <= t <= t2 + margin`, both bounds inclusive; no time is never in time."""
    if response_time is None:
        return False
    t1, t2 = timespan
    return max(0.0, t1) <= response_time <= t2 + margin


def released_letter(answer: str, official_quirks: bool = False) -> str:
    """The option letter as the released scorer reads it: drop lead-in phrases, give up on a long answer without a
    capital A-E, else the first capital A-E anywhere ("Based on ..." reads as B: the paper's numbers include that)."""
    text = answer.strip()
    for phrase in _LEAD_INS_RELEASED if official_quirks else _LEAD_INS:
        text = text.replace(phrase, "")
    found = re.search(r"[ABCDE]", text)
    if found is None:
        return ""  # also what its broken full-text fallback ends in
    return found.group(0)


def options(question: str) -> dict[str, str]:
    """Option letter -> text of a ViSpeak-Bench question ("What is this? A. Fan B. Billboard ...")."""
    body = question.split("\n")[0]
    found = re.findall(r"(?:^|\s)([A-E])\.\s*(.*?)(?=\s+[A-E]\.\s|$)", body)
    return {letter: text.strip() for letter, text in found}


def strict_letter(answer: str, question: str) -> str:
    """A stricter reading: a leading option letter ("B", "B.", "(B)", "Option B", "The answer is B"), else the one
    option whose text the answer names (none or several named: no letter)."""
    text = answer.strip()
    lead = re.match(
        r"^(?:the\s+)?(?:best\s+|correct\s+)?(?:answer|option)?\s*(?:is)?\s*[:\-]?\s*\(?([A-E])\b[\.\):]?",
        text,
        flags=re.IGNORECASE,
    )
    if lead and (lead.group(1).isupper() or len(text) <= 2):
        return lead.group(1).upper()
    lowered = text.lower()
    named = [letter for letter, option in options(question).items() if option and option.lower() in lowered]
    return named[0] if len(named) == 1 else ""


@dataclass
class TaskScore:
    task: str
    code: str
    items: int  # the denominator
    answered: int = 0
    time_correct: int = 0
    judged: int = 0
    time_accuracy: float | None = None
    text_score: float | None = None
    score: float | None = None  # time accuracy x text score, or VR accuracy x 5
    vr_accuracy: float | None = None
    vr_strict_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)


def _check_predictions(task: Task, items: Sequence[Item], predictions: Sequence[Prediction], quirks: bool) -> None:
    known = {item.video for item in items}
    seen: dict[str, int] = {}
    for i, p in enumerate(predictions):
        if p.video not in known:
            raise PredictionError(f"{task.name}: prediction {i} is for {p.video!r}, which is not in the annotations")
        if p.video in seen and not quirks:
            raise PredictionError(f"{task.name}: two predictions for {p.video!r} (entries {seen[p.video]} and {i})")
        seen[p.video] = i


def score_task(
    task: Task,
    items: Sequence[Item],
    predictions: Sequence[Prediction],
    verdicts: Mapping[str, Mapping] | None = None,
    official_quirks: bool = False,
) -> TaskScore:
    """One subtask's row. `verdicts` maps video -> {"score": float, "text": the judged answer text}."""
    _check_predictions(task, items, predictions, official_quirks)
    by_video = {item.video: item for item in items}
    if official_quirks:
        pairs = [(by_video[p.video], p) for p in predictions]
    else:
        latest = {p.video: p for p in predictions}
        pairs = [(item, latest.get(item.video)) for item in items]
    missing = sum(1 for _, p in pairs if p is None)
    row = TaskScore(task.name, task.code, len(pairs))
    if missing:
        row.notes.append(f"{missing} annotated clips have no prediction (counted as misses)")
    if not pairs:
        row.notes.append("no predictions")
        return row
    if not task.timed:
        correct = strict = 0
        for item, p in pairs:
            answer = p.text if p is not None else ""
            row.answered += bool(answer.strip())
            correct += released_letter(answer, official_quirks) == item.reference
            strict += strict_letter(answer, item.question) == item.reference
        row.vr_accuracy, row.vr_strict_accuracy = correct / len(pairs), strict / len(pairs)
        row.score = row.text_score = row.vr_accuracy * 5.0
        return row
    total = 0.0
    stale = unjudged = 0
    for item, p in pairs:
        if p is None:
            continue
        answered = p.time is not None and (official_quirks or bool(p.text.strip()))
        row.answered += answered
        if not (answered and in_time(p.time, item.timespan)):
            continue
        row.time_correct += 1
        verdict = (verdicts or {}).get(item.video)
        if verdict is not None and verdict.get("text") != p.text:
            stale += 1
            verdict = None
        if verdict is None:
            unjudged += 1
            if official_quirks and verdicts:  # a judge ran and failed here: the released scorer adds nothing
                row.judged += 1
            continue
        row.judged += 1
        total += float(verdict["score"])
    row.time_accuracy = row.time_correct / len(pairs)
    if stale:
        row.notes.append(f"{stale} verdicts are for another answer text (predictions changed): judge again")
    if unjudged and verdicts:
        row.notes.append(f"{unjudged} in-time answers have no verdict" + (" (counted 0)" if official_quirks else ""))
    if row.time_correct == 0:
        row.score = 0.0  # time accuracy 0: the product is 0 whatever the text
    elif row.judged:
        row.text_score = total / row.judged
        row.score = row.time_accuracy * row.text_score
    else:
        row.notes.append("no text score: no verdicts (run `vispeak-eval judge` with an LLM endpoint)")
    return row


def overall(rows: Sequence[TaskScore]) -> tuple[float | None, str]:
    """Mean of the seven subtask scores; None with the reason when any is missing."""
    scores = {r.code: r.score for r in rows}
    missing = [t.name for t in TASKS if scores.get(t.code) is None]
    if missing:
        return None, f"overall needs all 7 subtask scores; missing: {', '.join(missing)}"
    return sum(scores[t.code] for t in TASKS) / len(TASKS), ""


def overall_from_table(time_accuracy_percent: Mapping[str, float], text_score: Mapping[str, float]) -> float:
    """The paper's overall from its per-subtask table (time accuracy in %, text scores; "vr" is the VR score)."""
    parts = [text_score["vr"]]
    parts += [time_accuracy_percent[c] / 100.0 * text_score[c] for c in BY_CODE if c != "vr"]
    return sum(parts) / len(parts)


def format_table(rows: Sequence[TaskScore], official_quirks: bool = False) -> str:
    """The per-subtask table as text (the same numbers as `as_json`)."""
    head = f"{'subtask':<22} {'items':>5} {'answered':>8} {'in time':>8} {'time acc':>8} {'judged':>6} {'text':>5} "
    lines = [head + f"{'score':>6}"]
    for r in rows:

        def num(v, fmt):
            return format(v, fmt) if v is not None else "-"

        if r.vr_accuracy is not None:
            extra = f"  letter accuracy {r.vr_accuracy:.1%}, strict {r.vr_strict_accuracy:.1%}"
            lines.append(
                f"{r.task.replace('_', ' '):<22} {r.items:>5} {r.answered:>8} {'-':>8} {'-':>8} {'-':>6} "
                f"{'-':>5} {num(r.score, '.2f'):>6}{extra}"
            )
        else:
            acc = f"{r.time_accuracy:.1%}" if r.time_accuracy is not None else "-"
            lines.append(
                f"{r.task.replace('_', ' '):<22} {r.items:>5} {r.answered:>8} {r.time_correct:>8} "
                f"{acc:>8} {r.judged:>6} {num(r.text_score, '.2f'):>5} {num(r.score, '.2f'):>6}"
            )
        lines += [f"    note: {n}" for n in r.notes]
    value, why = overall(rows)
    lines.append(
        f"{'overall':<22} {'':>5} {'':>8} {'':>8} {'':>8} {'':>6} {'':>5} "
        f"{format(value, '.2f') if value is not None else '-':>6}"
    )
    if why:
        lines.append(f"    note: {why}")
    lines.append(
        "rules: "
        + (
            "official quirks (the released scorer's behaviour)"
            if official_quirks
            else "paper definitions, released scorer's bugs fixed"
        )
    )
    return "\n".join(lines)


def format_other(other: Sequence[TaskScore], official_quirks: bool) -> str:
    """One line with the same predictions scored under the other rules (both are reported, the chosen in full)."""
    name = "fixed rules" if official_quirks else "official quirks"

    def part(r: TaskScore) -> str:
        acc = "" if r.time_accuracy is None else f" {r.time_accuracy:.1%}"
        return f"{r.code} {'-' if r.score is None else format(r.score, '.2f')}{acc}"

    value, _ = overall(other)
    total = "-" if value is None else f"{value:.2f}"
    return f"with the {name}: " + " | ".join(part(r) for r in other) + f" | overall {total}"


def as_json(rows: Sequence[TaskScore], official_quirks: bool = False, other: Sequence[TaskScore] = ()) -> dict:
    value, why = overall(rows)
    data = {
        "rules": "official_quirks" if official_quirks else "fixed",
        "subtasks": {r.task: asdict(r) for r in rows},
        "overall": value,
        "overall_note": why,
    }
    if other:
        keys = ("time_accuracy", "text_score", "score", "vr_accuracy")
        data["other_rules"] = {
            "rules": "fixed" if official_quirks else "official_quirks",
            "subtasks": {r.task: {k: getattr(r, k) for k in keys} for r in other},
            "overall": overall(other)[0],
        }
    return data
