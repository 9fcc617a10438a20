"""The LLM judge: per-subtask rubrics, an OpenAI-compatible chat client, verdicts cached on disk.

Protocol (as the released scorer uses it): one user message holding the rubric and the case; the judge answers a
JSON object. Termination, wake-up, interruption and humor give `score` 0-5; anomaly gives `description` 0-3 plus
`advice` 0-2; gesture gives `gesture` 0-3 plus `context` 0-2. The paper's judge is gpt-4o-2024-05-13. The rubric
texts below are our own wording of the official criteria (the released prompts are not copied).

The endpoint is whatever the user configures: base URL (`.../v1`, we POST `<base>/chat/completions`), model, and the
*name* of the environment variable holding the key. The key is read from the environment when a request is made,
sent only in the Authorization header, and never logged, cached or written. Transport errors, HTTP 429 / 5xx and
answers that are not the JSON the rubric asks for are retried with exponential backoff; other HTTP errors (a bad
key, a wrong model) stop at once with the server's message. Verdicts are cached as one small JSON file per request,
keyed by the SHA-256 of (model, messages, rubric version): a rerun asks nothing twice. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vispeak_ros.evaluation.annotations import Item

RUBRIC_VERSION = "vispeak_ros-1"
DEFAULT_MODEL = "gpt-4o-2024-05-13"
_JSON_ONLY = "Reply with a single JSON object and nothing else: no markdown, no code fence, no text around it. {fields}"

RUBRICS: dict[str, str] = {
    "vt": (
        "You grade how clearly a response from an AI assistant tries to end the conversation. Give an integer score "
        "from 0 to 5:\n5: it says goodbye or closes the conversation in so many words.\n4: it wraps up (for example a "
        "summary followed by a sign-off).\n3: a neutral line that leans towards closing, such as offering further "
        "help.\n2: vague transitional wording.\n1: only a faint hint of closing.\n0: nothing suggests ending; the "
        "dialogue simply goes on."
    ),
    "vw": (
        "You grade how clearly a response from an AI assistant greets the user and opens a conversation. Give an "
        "integer score from 0 to 5:\n5: an explicit welcome or greeting, for example hello plus an offer to help.\n"
        "4: a greeting fitted to the situation, such as one matching the time of day.\n3: an offer of service that "
        "starts the exchange.\n2: a neutral opener.\n1: only an implicit cue of opening.\n0: no greeting and no "
        "attempt to start a dialogue."
    ),
    "vi": (
        "The user has signalled the AI assistant to stop talking. You grade how well the assistant's response "
        "acknowledges that and stops. Give an integer score from 0 to 5:\n5: it clearly acknowledges the request "
        "and stops.\n4: it implies it is stopping.\n3: it agrees passively and ends.\n2: it is ambiguous and seems "
        "to carry on.\n1: it partly acknowledges but does not stop.\n0: it ignores the signal and continues."
    ),
    "hr": (
        "You compare an AI assistant's reaction to a funny video moment with the ground-truth description of what "
        "makes it funny. Give an integer score from 0 to 5:\n5: the same humour, told as well.\n4: the main joke is "
        "kept, with small changes in the story or details.\n3: the humour is partly kept, with some deviations.\n"
        "2: the humour is partly kept but important parts are missing.\n1: only a superficial resemblance.\n0: "
        "nothing of the joke."
    ),
    "aw": (
        "You grade an AI assistant's warning about an anomaly in a video against the ground truth, in two parts.\n"
        "description (0-3), how well the described event agrees with the ground truth: 3 the core elements agree "
        "with no error; 2 the core elements agree with small errors; 1 only a superficial agreement; 0 key elements "
        "are wrong or contradict it.\nadvice (0-2), how sensible the advice is: 2 actionable, safe and logical; 1 "
        "broadly appropriate; 0 dangerous or made up."
    ),
    "gu": (
        "A user made a hand gesture during a conversation with an AI assistant. You grade the assistant's response "
        "in two parts.\ngesture (0-3), recognition of the gesture: 3 it names the gesture correctly; 2 it refers to "
        "it vaguely; 1 it does not mention a gesture; 0 it names a gesture that was not made.\ncontext (0-2), fit "
        "with the conversation: 2 it weaves the gesture naturally into the dialogue; 1 generic but relevant; 0 "
        "irrelevant or contradictory.\nThe dialogue history is context; the gesture given is the ground truth; the "
        "reference text is one good response, not the only acceptable one."
    ),
}
FIELDS: dict[str, dict[str, int]] = {  # verdict fields and their maxima; the score is their sum
    "vt": {"score": 5},
    "vw": {"score": 5},
    "vi": {"score": 5},
    "hr": {"score": 5},
    "aw": {"description": 3, "advice": 2},
    "gu": {"gesture": 3, "context": 2},
}


class JudgeError(RuntimeError):
    """The judge could not be reached or never gave a usable verdict; the message says why (never the key)."""


def prompt(item: Item, answer: str) -> str:
    """The user message for one answer: rubric, the case, and the JSON the answer must be."""
    code = item.task.code
    if code not in RUBRICS:
        raise ValueError(f"{item.task.name} is not judged (multiple choice)")
    fields = ", ".join(f'"{k}": <integer 0-{v}>' for k, v in FIELDS[code].items())
    parts = [RUBRICS[code], ""]
    if code == "gu":
        history = "\n".join(f"{speaker}: {text}" for speaker, text in item.dialogue[:2])
        parts += [f"[Dialogue history]\n{history}", f"[Gesture] {item.gesture}", f"[Reference text] {item.reference}"]
    elif code in ("aw", "hr"):
        parts.append(f"[Ground truth] {item.reference}")
    parts += [
        f"[Response to grade] {answer}",
        "",
        _JSON_ONLY.format(fields="{" + fields + ', "reason": "<one sentence>"}'),
    ]
    return "\n".join(parts)


def parse_verdict(content: str, code: str) -> dict[str, Any]:
    """The verdict in a judge's reply: a JSON object (a code fence or text around it tolerated) with every field an
    integer in range. Raises ValueError naming what is wrong."""
    text = content.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"no JSON object in the judge's reply: {content[:80]!r}")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as error:
        raise ValueError(f"the judge's reply is not valid JSON ({error}): {content[:80]!r}") from None
    if not isinstance(data, dict):
        raise ValueError("the judge's reply is not a JSON object")
    parts = {}
    for name, top in FIELDS[code].items():
        value = data.get(name)
        if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            raise ValueError(f"the judge's '{name}' must be a number in 0..{top}, got {value!r}")
        parts[name] = float(value)
    return {"score": sum(parts.values()), "parts": parts, "reason": str(data.get("reason", ""))}


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str
    model: str = DEFAULT_MODEL
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable; its value is read per request, never stored
    timeout_s: float = 60.0
    max_attempts: int = 5
    backoff_s: float = 1.0  # first wait; doubles up to backoff_max_s
    backoff_max_s: float = 30.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not re.match(r"^https?://", self.base_url or ""):
            raise ValueError(f"judge base URL must start with http:// or https://, got {self.base_url!r}")
        if self.max_attempts < 1:
            raise ValueError("judge max_attempts must be >= 1")


class _Retry(Exception):
    pass


class ChatClient:
    """POST /chat/completions to an OpenAI-compatible server (urllib, no dependency)."""

    def __init__(self, config: JudgeConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.requests = 0  # HTTP requests made (for tests and the summary)
        self._lock = threading.Lock()

    def _post(self, body: bytes) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.config.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with self._lock:
            self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode("utf-8", "replace")
            if key:
                detail = detail.replace(key, "***")
            if error.code == 429 or error.code >= 500:
                raise _Retry(f"HTTP {error.code} from {url}: {detail}") from None
            raise JudgeError(f"HTTP {error.code} from {url}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise _Retry(f"cannot reach {url}: {reason}") from None
        try:
            data = json.loads(raw)
            return data
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retry(f"{url} answered something that is not JSON: {raw[:80]!r}") from None

    def verdict(self, messages: list[dict], code: str) -> dict[str, Any]:
        """Ask until the reply parses as the rubric's JSON, with backoff; JudgeError after the last attempt."""
        body = json.dumps(
            {"model": self.config.model, "messages": messages, "temperature": self.config.temperature}
        ).encode("utf-8")
        wait, last = self.config.backoff_s, ""
        for attempt in range(self.config.max_attempts):
            if attempt:
                self.sleep(wait)
                wait = min(wait * 2, self.config.backoff_max_s)
            try:
                data = self._post(body)
                content = data["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise _Retry("the reply has no text content")
                return parse_verdict(content, code)
            except _Retry as error:
                last = str(error)
            except (KeyError, IndexError, TypeError):
                last = "the reply is not a chat completion (no choices[0].message.content)"
            except ValueError as error:
                last = str(error)
        raise JudgeError(f"no usable verdict after {self.config.max_attempts} attempts: {last}")


class VerdictCache:
    """One JSON file per request under `folder`, named by the SHA-256 of (model, messages, rubric version)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(model: str, messages: list[dict]) -> str:
        blob = json.dumps({"model": model, "messages": messages, "rubric": RUBRIC_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a torn write: ask again

    def put(self, key: str, verdict: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdict, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


class Judge:
    """Verdicts for answers, through the cache."""

    def __init__(self, config: JudgeConfig, cache_dir: str | Path, client: ChatClient | None = None) -> None:
        self.config = config
        self.client = client or ChatClient(config)
        self.cache = VerdictCache(cache_dir)
        self.cached = 0

    def judge(self, item: Item, answer: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt(item, answer)}]
        key = self.cache.key(self.config.model, messages)
        hit = self.cache.get(key)
        if hit is not None:
            self.cached += 1  # an int increment; the count is for the summary line only
            return hit
        verdict = {**self.client.verdict(messages, item.task.code), "model": self.config.model}
        self.cache.put(key, verdict)
        return verdict


def verdicts_path(folder: str | Path, task_name: str) -> Path:
    return Path(folder) / f"{task_name}_verdicts.json"


def load_verdicts(path: str | Path) -> dict[str, dict]:
    """video -> verdict ({"score", "text", ...}) from a verdicts file; {} when there is none."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from None
    verdicts = data.get("verdicts") if isinstance(data, dict) else None
    if not isinstance(verdicts, dict):
        raise ValueError(f'{path}: expected {{"verdicts": {{video: verdict}}}}')
    return verdicts


def save_verdicts(path: str | Path, verdicts: Mapping[str, dict], model: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({"model": model, "rubric": RUBRIC_VERSION, "verdicts": dict(verdicts)}, indent=1, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)
    return path


def judge_task(
    items: list[Item],
    predictions: list,
    judge: Judge,
    official_quirks: bool = False,
    progress: Callable[[str], None] | None = None,
    concurrency: int = 1,
) -> tuple[dict[str, dict], int]:
    """Verdicts (video -> verdict + the judged text) for the in-time answers of one subtask, and the number of answers
    the judge gave no usable verdict for. `concurrency` requests run at once (threads; the cache makes reruns
    cheap whatever the order). Gives up (JudgeError) when the first three answers all fail: a wrong endpoint is
    better said at once than after every clip."""
    from concurrent.futures import ThreadPoolExecutor

    from vispeak_ros.evaluation.scoring import in_time

    by_video = {item.video: item for item in items}
    work: list[tuple[Item, Any, str]] = []
    for p in predictions:
        item = by_video.get(p.video)
        if item is None or item.timespan is None or p.time is None:
            continue
        if not p.text.strip() and not official_quirks:
            continue  # no answer: nothing to judge
        if in_time(p.time, item.timespan):
            work.append((item, p, p.text if p.text.strip() else "null"))  # the released scorer sends "null"
    verdicts: dict[str, dict] = {}
    failed = succeeded = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(judge.judge, item, answer) for item, _, answer in work]
        for (item, p, _), future in zip(work, futures, strict=True):
            try:
                verdict = future.result()
            except JudgeError as error:
                failed += 1
                if progress:
                    progress(f"{item.task.name} {p.video}: {error}")
                if failed >= 3 and not succeeded:
                    for rest in futures:
                        rest.cancel()
                    raise
                continue
            succeeded += 1
            verdicts[p.video] = {**verdict, "text": p.text}
    return verdicts, failed
