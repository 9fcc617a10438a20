"""The judge client against a real HTTP server on loopback that speaks the OpenAI chat completions API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vispeak_ros.evaluation import cli, judge, tasks
from vispeak_ros.evaluation.annotations import parse_item
from vispeak_ros.evaluation.predictions import Prediction

KEY = "sk-test-0123456789-secret"


class ChatServer:
    """Answers POST /v1/chat/completions from a script of (status, body) replies; records every request."""

    def __init__(self):
        self.replies: list[tuple[int, bytes]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
                )
                status, reply = outer.replies.pop(0) if outer.replies else (500, b"script ran out")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def completion(self, content: str, status: int = 200) -> None:
        body = {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
        self.replies.append((status, json.dumps(body).encode()))

    def raw(self, status: int, body: bytes) -> None:
        self.replies.append((status, body))


@pytest.fixture()
def server():
    s = ChatServer()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def item(code="vw", **extra):
    task = tasks.get_task(code)
    answer = {"from": "gpt", "value": "A man falls from a ladder; call for help.", "time": 3.0, "timespan": [2.0, 4.0]}
    turns = [answer]
    if code in ("gu", "vt", "vi"):
        turns = [
            {"from": "human", "value": "What do you like?", "time": 0.0},
            {"from": "gpt", "value": "Music!", "time": 0.1},
            answer,
        ]
    return parse_item(task, 0, {"video": "v.mp4", "conversations": turns, **extra}, "test")


def make_judge(server, tmp_path, monkeypatch, **config):
    monkeypatch.setenv("JUDGE_KEY_FOR_TEST", KEY)
    waits = []
    cfg = judge.JudgeConfig(base_url=server.url, model="judge-model", api_key_env="JUDGE_KEY_FOR_TEST", **config)
    client = judge.ChatClient(cfg, sleep=waits.append)
    return judge.Judge(cfg, tmp_path / "cache", client), waits


def test_a_verdict_with_the_key_in_the_header_and_the_rubric_in_the_message(server, tmp_path, monkeypatch):
    j, waits = make_judge(server, tmp_path, monkeypatch)
    server.completion('{"score": 4, "reason": "a clear greeting"}')
    verdict = j.judge(item("vw"), "Hello! How can I help you?")
    assert verdict["score"] == 4.0 and verdict["reason"] == "a clear greeting" and waits == []
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "judge-model"
    content = request["body"]["messages"][0]["content"]
    assert "greets the user" in content and "Hello! How can I help you?" in content and '"score"' in content


def test_malformed_json_and_server_errors_are_retried_with_backoff(server, tmp_path, monkeypatch):
    j, waits = make_judge(server, tmp_path, monkeypatch, backoff_s=0.5)
    server.raw(503, b'{"error": "overloaded"}')
    server.raw(200, b"<html>not json</html>")
    server.completion("Sure! I would give it four out of five.")  # no JSON object
    server.completion('{"description": 2, "advice": "lots"}')  # a field that is not a number
    server.completion('```json\n{"description": 2, "advice": 1, "reason": "core agrees"}\n```')  # fenced: accepted
    verdict = j.judge(item("aw"), "Someone fell, call an ambulance.")
    assert verdict["score"] == 3.0 and verdict["parts"] == {"description": 2.0, "advice": 1.0}
    assert len(server.requests) == 5 and waits == [0.5, 1.0, 2.0, 4.0]


def test_out_of_range_scores_are_refused_and_attempts_are_bounded(server, tmp_path, monkeypatch):
    j, waits = make_judge(server, tmp_path, monkeypatch, max_attempts=3)
    for _ in range(3):
        server.completion('{"gesture": 7, "context": 1}')
    with pytest.raises(judge.JudgeError, match=r"no usable verdict after 3 attempts: .*'gesture' must be a number"):
        j.judge(item("gu", gesture="Thumbs Up"), "Nice thumbs up!")
    assert len(server.requests) == 3 and len(waits) == 2
    assert list((tmp_path / "cache").glob("*/*.json")) == []  # failures are not cached


def test_a_client_error_stops_at_once_and_never_shows_the_key(server, tmp_path, monkeypatch):
    j, waits = make_judge(server, tmp_path, monkeypatch)
    server.raw(401, json.dumps({"error": f"invalid key {KEY}"}).encode())
    with pytest.raises(judge.JudgeError, match="HTTP 401") as error:
        j.judge(item("vw"), "Hello!")
    assert KEY not in str(error.value) and "***" in str(error.value)
    assert len(server.requests) == 1 and waits == []


def test_unreachable_endpoint_is_retried_then_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    cfg = judge.JudgeConfig(
        base_url="http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY_VAR", max_attempts=2, timeout_s=2.0
    )
    client = judge.ChatClient(cfg, sleep=lambda s: None)
    with pytest.raises(judge.JudgeError, match=r"cannot reach http://127\.0\.0\.1:9/v1/chat/completions"):
        client.verdict([{"role": "user", "content": "x"}], "vw")
    assert client.requests == 2


def test_verdicts_are_cached_on_disk_by_request_hash_without_the_key(server, tmp_path, monkeypatch):
    j, _ = make_judge(server, tmp_path, monkeypatch)
    server.completion('{"score": 5, "reason": "explicit goodbye"}')
    first = j.judge(item("vt"), "Goodbye, talk soon!")
    again = judge.Judge(j.config, tmp_path / "cache", judge.ChatClient(j.config)).judge(
        item("vt"), "Goodbye, talk soon!"
    )
    assert first == again and len(server.requests) == 1
    files = list((tmp_path / "cache").glob("*/*.json"))
    assert len(files) == 1 and files[0].stem == judge.VerdictCache.key(
        "judge-model", server.requests[0]["body"]["messages"]
    )
    assert KEY not in files[0].read_text()
    server.completion('{"score": 1, "reason": "weak"}')
    assert j.judge(item("vt"), "Anyway.")["score"] == 1.0 and len(server.requests) == 2  # another answer: asked


def test_judge_task_asks_only_for_in_time_answers(server, tmp_path, monkeypatch):
    j, _ = make_judge(server, tmp_path, monkeypatch)
    items = [item("vw")]
    server.completion('{"score": 5}')
    verdicts, failed = judge.judge_task(items, [Prediction("v.mp4", "Hello there!", 3.0)], j)
    assert verdicts["v.mp4"]["score"] == 5.0 and verdicts["v.mp4"]["text"] == "Hello there!" and failed == 0
    late, _ = judge.judge_task(items, [Prediction("v.mp4", "Hello there!", 6.5)], j)
    silent, _ = judge.judge_task(items, [Prediction("v.mp4", "", 3.0)], j)
    assert late == {} and silent == {} and len(server.requests) == 1
    server.completion('{"score": 0}')  # with the quirks an empty answer in time is judged as "null"
    quirky, _ = judge.judge_task(items, [Prediction("v.mp4", "", 3.0)], j, official_quirks=True)
    assert quirky["v.mp4"]["score"] == 0.0 and "null" in server.requests[-1]["body"]["messages"][0]["content"]


def test_judge_command_writes_verdicts_and_says_plainly_when_there_is_no_endpoint(
    server, tmp_path, monkeypatch, capsys
):
    ann, out = tmp_path / "ann", tmp_path / "out"
    ann.mkdir()
    out.mkdir()
    answer = {"from": "gpt", "value": "Hello!", "time": 2.0, "timespan": [1.0, 3.0]}
    (ann / "Visual_Wake-Up.json").write_text(json.dumps([{"video": "v.mp4", "conversations": [answer]}]))
    (out / "Visual_Wake-Up_output.json").write_text(json.dumps([{"v.mp4": ["Hi, can I help?", 2.0]}]))
    monkeypatch.delenv("VISPEAK_JUDGE_BASE_URL", raising=False)
    assert cli.main(["judge", "--annotations", str(ann), "--output", str(out)]) == 2
    assert "no judge endpoint configured" in capsys.readouterr().err
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    server.completion('{"score": 5, "reason": "greets"}')
    args = [
        "judge",
        "--annotations",
        str(ann),
        "--output",
        str(out),
        "--base-url",
        server.url,
        "--api-key-env",
        "MY_JUDGE_KEY",
    ]
    assert cli.main(args) == 0
    verdicts = judge.load_verdicts(out / "Visual_Wake-Up_verdicts.json")
    assert verdicts["v.mp4"]["score"] == 5.0
    assert cli.main(args) == 0 and len(server.requests) == 1  # the second run is served by the cache
    for path in out.rglob("*"):
        assert not path.is_file() or KEY not in path.read_text()
    assert KEY not in capsys.readouterr().out
    assert cli.main(["score", "--annotations", str(ann), "--output", str(out)]) == 0
    assert "5.00" in capsys.readouterr().out


def test_concurrent_requests_keep_each_verdict_with_its_answer(server, tmp_path, monkeypatch):
    j, _ = make_judge(server, tmp_path, monkeypatch)
    items = [
        parse_item(
            tasks.get_task("vw"),
            k,
            {
                "video": f"{k}.mp4",
                "conversations": [{"from": "gpt", "value": "Hello", "time": 1.0, "timespan": [0.0, 2.0]}],
            },
            "test",
        )
        for k in range(6)
    ]
    for _ in range(6):
        server.completion('{"score": 5}')
    answers = [Prediction(f"{k}.mp4", f"Hello number {k}", 1.0) for k in range(6)]
    verdicts, failed = judge.judge_task(items, answers, j, concurrency=3)
    assert failed == 0 and sorted(verdicts) == [f"{k}.mp4" for k in range(6)]
    assert all(verdicts[f"{k}.mp4"]["text"] == f"Hello number {k}" for k in range(6))
    asked = sorted(
        r["body"]["messages"][0]["content"].split("[Response to grade] ")[1].split("\n")[0] for r in server.requests
    )
    assert asked == [f"Hello number {k}" for k in range(6)]
