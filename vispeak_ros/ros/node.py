"""The `vispeak` node, written once against the graph port (`ros.port`); rclpy and Cyclone DDS host it.

Data flows one way: camera / microphone / query messages -> conversions -> segmenter (one-second segments) ->
runtime worker (the model, on its own thread) -> outputs -> messages. Callbacks only convert and enqueue; the
model never runs in a callback, so a slow model drops stale seconds (counted) instead of blocking the executor.

Lifecycle (as a ROS 2 managed node): the constructor declares parameters; `configure()` validates them and loads
the model (slow); `activate()` creates the endpoints and starts the worker; `deactivate()` stops processing
(the stop-lock heartbeat stops too, so a twist_mux lock with a timeout engages); `cleanup()` drops the model.

Topics (relative names, remappable; `~` is the node's namespace):
  in   camera/image_raw (Image) or camera/image_raw/compressed (CompressedImage), SensorDataQoS
       audio (mgonzs13 AudioStamped), or audio_stamped (ros_drivers AudioDataStamped) + audio_info, SensorDataQoS
       (audio_info: reliable, transient local, so the last one is received), query (String), speaking (Bool)
  out  ~/feedback ~/events ~/speech ~/speech_cancel ~/informative (reliable, keep last 10),
       ~/state (transient local, depth 1), ~/stop_lock (Bool at lock_rate_hz), ~/stop_cmd_vel (optional zero
       Twist/TwistStamped while stopped), /diagnostics
  srv  ~/clear_stop ~/reset (std_srvs/Trigger)

THE STOP LOCK IS ADVISORY AND NOT SAFETY-RATED: it does not replace a certified safety controller.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from vispeak_ros.core.events import Behaviour
from vispeak_ros.core.segmenter import Segment, Segmenter, SegmenterConfig
from vispeak_ros.ros import messages as m
from vispeak_ros.ros.diagnostics import ERROR, OK, WARN, CheckpointChecksum, RateMeter, diagnostic_array, percentile
from vispeak_ros.ros.node_params import PARAMETERS, runtime_config
from vispeak_ros.ros.port import (
    DEFAULT,
    DIAGNOSTICS_QOS,
    DIAGNOSTICS_TOPIC,
    DIAGNOSTICS_TYPE,
    SENSOR_DATA,
    TRANSIENT_LOCAL_LATCHED,
    GraphPort,
)
from vispeak_ros.ros.safety import StopLatch, StopSnapshot
from vispeak_ros.ros.speech import SpeakingEstimate

NODE_NAME = "vispeak"
NS_PER_S = 1_000_000_000
ADVANCE_PERIOD_S = 0.1  # how often the segmenter is told the time, so seconds close when inputs stall
STAMP_JUMP_S = 5.0  # a sensor stamp this far from the stream clock is an outlier (a stray stamp, or a new clock)
NEW_CLOCK_AFTER_S = 0.5  # outlier stamps that agree with each other for this long (wall time) are a new clock
CLOCK_JUMP_BACK_S = 1.0  # ROS time going back this far (sim time reset: a replay restarted) starts a new session
FAULT_COUNTERS = frozenset({"backend_errors"})  # in `errors` beside the bad-input kinds, but reported as faults
LOG_EVERY_S = 5.0  # bad input is logged at most once per kind in this many seconds (and always counted)

CAMERA_TOPICS = {
    "raw": ("camera/image_raw", "sensor_msgs/msg/Image"),
    "compressed": ("camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
}
AUDIO_TOPICS = {
    "mgonzs13": ("audio", "audio_common_msgs/msg/AudioStamped"),
    ("ros_drivers", True): ("audio_stamped", "audio_common_msgs/msg/AudioDataStamped"),
    ("ros_drivers", False): ("audio", "audio_common_msgs/msg/AudioData"),
}
AUDIO_INFO = ("audio_info", "audio_common_msgs/msg/AudioInfo")


class NodeError(RuntimeError):
    """A one-line reason the node cannot configure or activate (bad parameter, missing checkpoint...)."""


class StampGate:
    """Keeps one stray sensor stamp from wrecking the stream. The segmenter drops what is older than what it
    has seen, so a single frame stamped years ahead would make every later frame "backwards" for good. A stamp
    more than `jump_ns` from the stream clock is rejected, unless such stamps keep agreeing with each other for
    `confirm_ns` of wall time: then the source's clock really changed (a bag loop without sim time, a camera
    whose clock was reset) and the caller restarts the stream on it."""

    def __init__(self, jump_ns: int, confirm_ns: int) -> None:
        self.jump_ns, self.confirm_ns = jump_ns, confirm_ns
        self._candidate: tuple[int, int] | None = None  # (skew of the first outlier, its wall time)

    def check(self, stamp_ns: int, expected_ns: int | None, wall_ns: int) -> str:
        """One of "ok", "outlier" (drop it) or "new clock" (restart the stream on this stamp)."""
        if expected_ns is None or abs(stamp_ns - expected_ns) <= self.jump_ns:
            self._candidate = None
            return "ok"
        skew = stamp_ns - expected_ns
        if self._candidate is None or abs(skew - self._candidate[0]) > self.jump_ns:
            self._candidate = (skew, wall_ns)
            return "outlier"
        if wall_ns - self._candidate[1] >= self.confirm_ns:
            self._candidate = None
            return "new clock"
        return "outlier"

    def reset(self) -> None:
        self._candidate = None


class VispeakNode:
    """Node logic over a `GraphPort`. `backend` (tests, tools) replaces loading the configured checkpoint."""

    def __init__(self, port: GraphPort, *, backend: Any = None) -> None:
        self.port = port
        self.log = port.logger
        self.params: dict[str, Any] = {
            p.name: port.declare_parameter(p.name, p.default, p.descriptor) for p in PARAMETERS
        }
        port.add_parameter_callback(self._on_parameters)
        self._backend = backend
        self._lock = threading.RLock()  # node thread (callbacks, timers) vs worker thread (outputs)
        self.stop = StopLatch(self.params["stop_latch_timeout_s"])
        self.speaking = SpeakingEstimate(self.params["speech_chars_per_s"])
        self.assistant: Any = None
        self.worker: Any = None
        self.config: Any = None
        self.configured = False
        self.active = False
        self._endpoints_created = False
        self._offset_ns: int | None = None  # stream time minus ROS time, from the latest sensor stamp
        self._rates: dict[str, RateMeter] = {}
        self.errors: dict[str, int] = {}  # bad input and faults, by kind
        self._last_error = ""
        self._logged: dict[str, tuple[float | None, int]] = {}  # kind -> (last logged, monotonic s; unlogged since)
        self._errors_reported = 0  # bad-input count at the last diagnostics report
        self._seen_worker_errors = 0
        self._processed_at_fault = 0
        self._published_state: tuple | None = None
        self._checksum: CheckpointChecksum | None = None
        self._tts: Any = None
        self._unstamped_audio = False
        self._gate = StampGate(round(STAMP_JUMP_S * NS_PER_S), round(NEW_CLOCK_AFTER_S * NS_PER_S))
        self._last_now_ns: int | None = None  # ROS time at the last input or heartbeat, to see it jump back
        self.speech_fallback = ""  # why speech goes to the topic although tts_action was asked for
        self.speech_fallbacks = 0  # sentences sent to ~/speech because the TTS action server was not there

    # ------------------------------------------------------------------------------------------ lifecycle
    def configure(self) -> None:
        """Validate parameters and load the model. Raises NodeError with one line."""
        from vispeak_ros.runtime.config import BEHAVIOURS, ConfigError

        p = self.params
        try:
            # Events of every behaviour are typed; `behaviours` only filters what is published (tunable at run time).
            self.config = runtime_config({**p, "behaviours": list(BEHAVIOURS)})
        except ConfigError as error:
            raise NodeError(str(error)) from None
        for name in ("behaviours", "stop_behaviours"):
            unknown = [b for b in p[name] if b not in BEHAVIOURS]
            if unknown:
                raise NodeError(f"parameter {name!r}: unknown behaviour(s) {unknown}; known: {', '.join(BEHAVIOURS)}")
        self.segmenter = Segmenter(self._segmenter_config(), decode_frame=_decode_frame())
        self._audio = self._audio_converter()
        self.assistant = self._load_assistant()
        if self.config.checkpoint:
            self._checksum = CheckpointChecksum(Path(self.config.checkpoint))
        else:
            from vispeak_ros import data

            self._checksum = CheckpointChecksum(data.demo_checkpoint())
        self.configured = True
        self.log.info(
            f"configured: {self.config.checkpoint or 'bundled demo checkpoint'} on {self.config.backend} "
            f"({self.config.device}, {self.config.dtype}); camera {self._camera_topic()[0]}, audio "
            f"{self._audio_topic()[0] if self._audio_topic() else 'none'}"
        )

    def activate(self) -> None:
        if not self.configured:
            raise NodeError("activate: the node is not configured")
        from vispeak_ros.runtime.worker import Worker

        if not self._endpoints_created:
            self._create_endpoints()
            self._endpoints_created = True
        with self._lock:
            self.worker = Worker(self.assistant, on_output=self._on_output).start()
            self._seen_worker_errors = 0
            self.active = True
        self._publish_state(force=True)
        self.log.info("active: watching and listening")

    def deactivate(self) -> None:
        with self._lock:
            self.active = False
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
        self._publish_state(force=True)
        self.log.info("inactive: the stop-lock heartbeat has stopped")

    def cleanup(self) -> None:
        if self.active:
            self.deactivate()
        self.assistant = None
        self.configured = False

    def shutdown(self) -> None:
        """Idempotent: stop processing and release the model."""
        self.cleanup()

    # ------------------------------------------------------------------------------------------ endpoints
    def _create_endpoints(self) -> None:
        port, p = self.port, self.params
        topic, msg_type = self._camera_topic()
        port.create_subscription(msg_type, topic, self._on_image, SENSOR_DATA)
        audio = self._audio_topic()
        if audio is not None:
            port.create_subscription(audio[1], audio[0], self._on_audio, SENSOR_DATA)
            if p["audio_flavour"] == "ros_drivers":
                port.create_subscription(AUDIO_INFO[1], AUDIO_INFO[0], self._on_audio_info, TRANSIENT_LOCAL_LATCHED)
        port.create_subscription(m.STRING, "query", self._on_query, DEFAULT)
        port.create_subscription(m.BOOL, "speaking", self._on_speaking, DEFAULT)
        self.pub_feedback = port.create_publisher(m.FEEDBACK, "~/feedback", DEFAULT)
        self.pub_events = port.create_publisher(m.EVENT, "~/events", DEFAULT)
        self.pub_speech = port.create_publisher(m.STRING, "~/speech", DEFAULT)
        self.pub_speech_cancel = port.create_publisher(m.EMPTY, "~/speech_cancel", DEFAULT)
        self.pub_informative = port.create_publisher(m.INFORMATIVE, "~/informative", DEFAULT)
        self.pub_state = port.create_publisher(m.STATE, "~/state", TRANSIENT_LOCAL_LATCHED)
        self.pub_lock = port.create_publisher(m.BOOL, "~/stop_lock", DEFAULT)
        self.pub_twist = None
        if p["stop_twist"] != "none":
            twist_type = m.TWIST_STAMPED if p["stop_twist"] == "twist_stamped" else m.TWIST
            self.pub_twist = port.create_publisher(twist_type, "~/stop_cmd_vel", DEFAULT)
        self.pub_diagnostics = port.create_publisher(DIAGNOSTICS_TYPE, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)
        port.create_service(m.TRIGGER_SRV, "~/clear_stop", self._on_clear_stop)
        port.create_service(m.TRIGGER_SRV, "~/reset", self._on_reset)
        port.create_timer(ADVANCE_PERIOD_S, self._on_advance)
        port.create_timer(1.0 / p["lock_rate_hz"], self._on_heartbeat, steady=True)  # beats while /clock pauses
        port.create_timer(p["diagnostics_period_s"], self._on_diagnostics, steady=True)
        if p["speech_sink"] == "tts_action":
            try:
                self._tts = port.create_action_client("audio_common_msgs/action/TTS", p["tts_action_name"])
            except (NotImplementedError, KeyError, ImportError, AttributeError) as error:  # DDS; no TTS type
                self.speech_fallback = f"{error}: sentences go to ~/speech"
                self.log.warning(self.speech_fallback)

    def _camera_topic(self) -> tuple[str, str]:
        return CAMERA_TOPICS[self.params["camera_transport"]]

    def _audio_topic(self) -> tuple[str, str] | None:
        flavour = self.params["audio_flavour"]
        if flavour == "none":
            return None
        if flavour == "mgonzs13":
            return AUDIO_TOPICS["mgonzs13"]
        return AUDIO_TOPICS[(flavour, self.params["audio_stamped"])]

    def _segmenter_config(self) -> SegmenterConfig:
        return SegmenterConfig(
            frame_policy=self.config.frame_policy,
            max_input_latency_s=self.config.max_input_latency_s,
            expect_audio=self.params["audio_flavour"] != "none",
        )

    def _audio_converter(self) -> Any:
        from vispeak_ros.ros.conversions.audio import AudioStreamConverter

        audio = self._audio_topic()
        if audio is None:
            return None
        self._unstamped_audio = audio[1].endswith("/AudioData")
        return AudioStreamConverter(audio[0], flavour=self.params["audio_flavour"])

    def _load_assistant(self) -> Any:
        from vispeak_ros.model.errors import CheckpointError
        from vispeak_ros.runtime.assistant import Assistant

        try:
            return Assistant(self.config, self._backend)
        except (CheckpointError, OSError, ValueError, RuntimeError) as error:  # RuntimeError: BackendUnavailable
            raise NodeError(f"cannot load the model: {' '.join(str(error).split())}") from None
        except Exception as error:  # a damaged export can fail inside onnxruntime or a parser: still one line
            raise NodeError(f"cannot load the model: {type(error).__name__}: {' '.join(str(error).split())}") from None

    # ------------------------------------------------------------------------------------------ inputs
    def _stream_now(self, now_ns: int) -> int:
        return now_ns + (self._offset_ns or 0)

    def _count(self, kind: str, message: str) -> None:
        """Count bad input by kind; log one line per kind every LOG_EVERY_S (rclpy throttles per call site, which
        would let one noisy kind hide the others), saying how many were not logged."""
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self._last_error = message
        now = time.monotonic()
        logged_at, unlogged = self._logged.get(kind, (None, 0))
        if logged_at is not None and now - logged_at < LOG_EVERY_S:
            self._logged[kind] = (logged_at, unlogged + 1)
            return
        self._logged[kind] = (now, 0)
        self.log.warning(message + (f" ({unlogged} more {kind} since the last line)" if unlogged else ""))

    def _tick(self, topic: str, now_ns: int) -> None:
        meter = self._rates.get(topic)
        if meter is None:
            meter = self._rates[topic] = RateMeter()
        meter.tick(now_ns)

    def _submit(self, segments: list[Segment]) -> None:
        for segment in segments:
            self.worker.submit(segment)

    def _check_clock(self, now_ns: int) -> None:
        """ROS time went back (sim time reset: a replay restarted): a fresh session on the new time, as ~/reset.
        Without it every later input would be older than what the segmenter has seen, and dropped."""
        last, self._last_now_ns = self._last_now_ns, now_ns
        if last is not None and now_ns < last - CLOCK_JUMP_BACK_S * NS_PER_S:
            self._count("clock_jumps_back", f"ROS time jumped back {(last - now_ns) / NS_PER_S:.1f} s: new session")
            self._reset_session()

    def _restart_stream(self, why: str) -> None:
        """Close what was received (nothing is lost), then forget the stream's clock; the session goes on."""
        for chunk in self._audio.flush() if self._audio is not None else []:
            self._submit(self.segmenter.add_audio(chunk.stamp_ns, chunk.samples))
        self._submit(self.segmenter.flush())
        self.segmenter.reset()
        self._offset_ns = None
        self._gate.reset()
        self.errors["stream_restarts"] = self.errors.get("stream_restarts", 0) + 1
        self.log.warning(f"{why}: stream restarted")

    def _stamp_ok(self, topic: str, stamp_ns: int, now_ns: int) -> bool:
        """Gate a sensor stamp against the stream clock (see StampGate); False: drop the message."""
        verdict = self._gate.check(stamp_ns, None if self._offset_ns is None else self._stream_now(now_ns),
                                   time.monotonic_ns())  # fmt: skip
        if verdict == "outlier":
            clock_s = self._stream_now(now_ns) / NS_PER_S
            self._count("bad_stamps", f"{topic}: stamp {stamp_ns / NS_PER_S:.3f} s is more than {STAMP_JUMP_S:g} s "
                                      f"from the stream clock ({clock_s:.3f} s); dropped")  # fmt: skip
            return False
        if verdict == "new clock":
            self._restart_stream(f"{topic}: stamps moved {(stamp_ns - self._stream_now(now_ns)) / NS_PER_S:.1f} s")
        return True

    def _on_image(self, msg: Any) -> None:
        if not self.active:
            return
        from vispeak_ros.ros.conversions import ConversionError
        from vispeak_ros.ros.conversions.image import frame_payload

        now = self.port.now_ns()
        topic = self._camera_topic()[0]
        self._tick(topic, now)
        self._check_clock(now)
        try:
            payload = frame_payload(msg, topic)
        except ConversionError as error:
            self._count("bad_frames", str(error))
            return
        stamp = payload.stamp_ns
        if not stamp:
            self._count("unstamped_frames", f"{topic}: frame without a header stamp; stamped on arrival")
            stamp = self._stream_now(now)
        elif not self._stamp_ok(topic, stamp, now):
            return
        self._offset_ns = stamp - now
        if self.params["frame_id"] == "" and payload.frame_id:
            self._frame_id = payload.frame_id
        self._submit(self.segmenter.add_frame(stamp, payload))

    def _on_audio(self, msg: Any) -> None:
        if not self.active:
            return
        from vispeak_ros.ros.conversions import ConversionError
        from vispeak_ros.ros.conversions.buffers import header_stamp_ns

        now = self.port.now_ns()
        topic = self._audio_topic()[0]
        self._tick(topic, now)
        self._check_clock(now)
        stamp = None
        if self._unstamped_audio:  # follow the sample count from the first arrival
            stamp = self._audio.next_stamp_ns or self._stream_now(now)
        elif not self._stamp_ok(topic, header_stamp_ns(msg) or 0, now):
            return
        try:
            chunks = self._audio.convert(msg, stamp_ns=stamp)
        except ConversionError as error:
            self._count("bad_audio", str(error))
            return
        if self._audio.stats.dropped_waiting_for_info:
            self.log.warning(f"{topic}: audio dropped until the first AudioInfo on audio_info",
                             throttle_duration_sec=10.0)  # fmt: skip
        mute = self.params["mute_audio_while_speaking"] and self.speaking.speaking(now)
        for chunk in chunks:
            samples = chunk.samples * 0.0 if mute else chunk.samples
            self._submit(self.segmenter.add_audio(chunk.stamp_ns, samples))

    def _on_audio_info(self, msg: Any) -> None:
        from vispeak_ros.ros.conversions import ConversionError

        try:
            self._audio.on_info(msg)
        except ConversionError as error:
            self._count("bad_audio_info", str(error))

    def _on_query(self, msg: Any) -> None:
        if not self.active:
            return
        now = self.port.now_ns()
        self._tick("query", now)
        text = str(msg.data).strip()
        if text:
            self._submit(self.segmenter.add_text(self._stream_now(now), text))

    def _on_speaking(self, msg: Any) -> None:
        with self._lock:
            self.speaking.report(bool(msg.data))

    def _on_advance(self) -> None:
        if self.active and self._offset_ns is not None:
            self._submit(self.segmenter.advance(self._stream_now(self.port.now_ns())))

    # ------------------------------------------------------------------------------------------ outputs
    @property
    def frame_id(self) -> str:
        return self.params["frame_id"] or getattr(self, "_frame_id", "camera")

    def _on_output(self, emitted: Any) -> None:
        """Worker thread: publish each output as soon as it is made."""
        from vispeak_ros.runtime.outputs import (
            FeedbackChunk,
            FinalAnswer,
            InformativeRecord,
            SpeechCancel,
            StateChange,
            TypedEvent,
        )

        output, port, frame = emitted.output, self.port, self.frame_id
        with self._lock:
            if isinstance(output, InformativeRecord):
                self.pub_informative.publish(m.informative(port, output, frame))
            elif isinstance(output, FeedbackChunk):
                self.pub_feedback.publish(m.feedback(port, output, emitted.latency_s, frame))
                self._say(output.text)
            elif isinstance(output, FinalAnswer):
                self.pub_feedback.publish(m.feedback(port, output, emitted.latency_s, frame))
                self.log.info(f"answer #{output.answer_id} ({output.reason}): {output.text}")
            elif isinstance(output, TypedEvent):
                self._on_event(output.event)
            elif isinstance(output, SpeechCancel):
                self.pub_speech_cancel.publish(port.new_message(m.EMPTY))
                if self._tts is not None:
                    self._tts.cancel_goals()
                self.speaking.cancelled()
            elif isinstance(output, StateChange):
                self._publish_state()

    def _say(self, text: str) -> None:
        if not text:
            return
        p = self.params
        if self._tts is not None and self._tts.server_is_ready():
            self._tts.send_goal(text=text, language=p["tts_language"], volume=p["tts_volume"], rate=p["tts_rate"])
        else:
            if self._tts is not None:  # the TTS server went away (or never came): a goal would wait forever
                self.speech_fallbacks += 1
                self.log.warning(f"TTS action server {self._tts.name!r} not available: sentences go to ~/speech",
                                 throttle_duration_sec=LOG_EVERY_S)  # fmt: skip
            self.pub_speech.publish(self.port.new_message(m.STRING, data=text))
        self.speaking.said(text, self.port.now_ns())

    def _on_event(self, event: Any) -> None:
        name = event.behaviour.name.lower()
        if event.behaviour is not Behaviour.NONE and name in self.params["behaviours"]:
            self.pub_events.publish(m.event(self.port, event, self.frame_id))
        if name in self.params["stop_behaviours"]:
            self.stop.raise_event(f"{name}: {event.text}", self.port.now_ns())
            self.log.warning(f"advisory stop raised by {name}: {event.text}")
            self._publish_state()
            self._publish_lock()

    # ------------------------------------------------------------------------------------------ safety
    def _check_faults(self, now_ns: int) -> None:
        worker = self.worker
        if worker is None:
            return
        stats = worker.stats
        if stats.errors > self._seen_worker_errors:
            self._seen_worker_errors = stats.errors
            self._processed_at_fault = stats.processed
            reason = f"backend raised {type(worker.error).__name__}: {worker.error}"
            self.errors["backend_errors"] = stats.errors
            self.stop.set_fault(reason, now_ns)
            self.log.error(reason, throttle_duration_sec=5.0)
            return
        busy = worker.busy_since
        hung = busy is not None and time.perf_counter() - busy > self.params["watchdog_timeout_s"]
        if hung:
            self.stop.set_fault(f"model step hung for {time.perf_counter() - busy:.1f} s", now_ns)
            self.log.error("model step hung", throttle_duration_sec=5.0)
        elif not worker.alive:
            self.stop.set_fault("the runtime worker thread died", now_ns)
        elif stats.processed > self._processed_at_fault:
            self.stop.fault_gone()

    def _on_heartbeat(self) -> None:
        if not self.active:
            return
        now = self.port.now_ns()
        self._check_clock(now)  # outside the lock: a reset joins the worker, which may be waiting for it
        with self._lock:
            self._check_faults(now)
            self._publish_lock()
            self._publish_state()
            if self.worker is not None:  # outputs were published by the callback; the copies queued beside them
                self.worker.outputs.drain()  # are for pull-style users, and would sit at the queue's bound

    def _publish_lock(self) -> None:
        now = self.port.now_ns()
        snapshot = self.stop.snapshot(now)
        self.pub_lock.publish(self.port.new_message(m.BOOL, data=snapshot.active))
        if self.pub_twist is not None and snapshot.active:
            stamped = self.params["stop_twist"] == "twist_stamped"
            self.pub_twist.publish(m.zero_twist(self.port, stamped, now, self.frame_id))

    def _publish_state(self, force: bool = False) -> None:
        if not self._endpoints_created or self.assistant is None:
            return
        now = self.port.now_ns()
        snapshot = self.stop.snapshot(now)
        key = (self.assistant.state, snapshot.active, snapshot.reason, self.active)
        if key == self._published_state and not force:
            return
        self._published_state = key
        self.pub_state.publish(m.state(self.port, self.assistant.state, snapshot, self.active, now, self.frame_id))

    def stop_snapshot(self) -> StopSnapshot:
        return self.stop.snapshot(self.port.now_ns())

    # ------------------------------------------------------------------------------------------ services
    def _on_clear_stop(self, _request: Any, response: Any) -> Any:
        with self._lock:
            response.success, response.message = self.stop.clear(self.port.now_ns())
            self._publish_state()
        self.log.info(f"clear_stop: {response.message}")
        return response

    def _on_reset(self, _request: Any, response: Any) -> Any:
        """Start a fresh session: forget the stream and the conversation (the stop is not cleared)."""
        if not self.active:
            response.success, response.message = False, "the node is not active"
            return response
        self._reset_session()
        response.success, response.message = True, "session reset"
        self.log.info("reset: fresh session")
        return response

    def _reset_session(self) -> None:
        from vispeak_ros.runtime.assistant import Assistant
        from vispeak_ros.runtime.worker import Worker

        self.worker.stop()  # outside the lock: the worker may be publishing an output under it
        with self._lock:
            self.assistant = Assistant(self.config, self.assistant.backend)
            self.segmenter.reset()
            if self._audio is not None:
                self._audio.flush()
            self._offset_ns = None
            self._gate.reset()
            self.speaking.cancelled()
            self.worker = Worker(self.assistant, on_output=self._on_output).start()
            self._seen_worker_errors = 0
            self._publish_state(force=True)

    # ------------------------------------------------------------------------------------------ parameters
    def _on_parameters(self, changes: dict[str, Any]) -> tuple[bool, str]:
        from vispeak_ros.runtime.config import BEHAVIOURS

        for name in ("behaviours", "stop_behaviours"):
            if name in changes:
                unknown = [b for b in changes[name] if b not in BEHAVIOURS]
                if unknown:
                    return False, f"{name}: unknown behaviour(s) {unknown}; known: {', '.join(BEHAVIOURS)}"
        with self._lock:
            self.params.update(changes)
            if "trigger_threshold" in changes and self.assistant is not None:
                self.assistant.set_trigger_threshold(changes["trigger_threshold"])
            if "stop_latch_timeout_s" in changes:
                self.stop.latch_timeout_s = changes["stop_latch_timeout_s"]
            if "speech_chars_per_s" in changes:
                self.speaking.chars_per_s = changes["speech_chars_per_s"]
        self.log.info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return True, ""

    # ------------------------------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        """(level, message, figures) as published on /diagnostics."""
        now = self.port.now_ns()
        worker = self.worker
        snapshot = self.stop.snapshot(now)
        values: dict[str, Any] = {}
        for topic, meter in sorted(self._rates.items()):
            values[f"rate {topic} (Hz)"] = meter.rate(now)
            values[f"received {topic}"] = meter.total  # every message that reached the node, good or bad
        seg = self.segmenter.stats
        values.update({
            "frames in": seg.frames_in, "frames used": seg.frames_used, "frames skipped": seg.frames_skipped,
            "frames late": seg.frames_late, "frames backwards": seg.frames_backwards, "audio gaps": seg.audio_gaps,
            "segments closed": seg.segments_closed, "segments partial": seg.segments_partial,
        })  # fmt: skip
        if self._audio is not None:
            values["audio dropped waiting for info"] = self._audio.stats.dropped_waiting_for_info
            values["audio reanchors"] = self._audio.stats.reanchors
            if self._unstamped_audio:
                values["audio stamps"] = "from the sample count, anchored at the first arrival (unstamped topic)"
        for kind, count in sorted(self.errors.items()):
            values[kind] = count
        if worker is not None:
            stats, steps = worker.stats, list(worker.stats.process_s)
            last = worker.last_segment
            values["segment lag (s)"] = (self._stream_now(now) - last.end_ns) / NS_PER_S if last else 0.0
            values["model step p50 (ms)"] = percentile(steps, 50) * 1e3
            values["model step p99 (ms)"] = percentile(steps, 99) * 1e3
            values["segments processed"] = stats.processed
            values["segments dropped (model behind)"] = stats.segments_dropped
            values["segment queue depth"] = len(worker.segments)
            values["output queue depth"] = len(worker.outputs)
        values["backend"] = self.config.backend if self.config else "unconfigured"
        values["precision"] = self.config.dtype if self.config else ""
        values["device"] = self.config.device if self.config else ""
        values["checkpoint"] = (self.config.checkpoint or "bundled demo") if self.config else ""
        values["checkpoint checksum"] = self._checksum.value if self._checksum else ""
        values["session state"] = self.assistant.state.value if self.assistant else "unconfigured"
        values["stop active"] = snapshot.active
        values["stop reason"] = snapshot.reason
        if self.speech_fallback:
            values["speech"] = self.speech_fallback
        if self._tts is not None:
            values["speech to ~/speech (no TTS server)"] = self.speech_fallbacks
        # Bad input (not faults: they have their own ERROR) since the last report; counted whatever the level.
        bad = sum(count for kind, count in self.errors.items() if kind not in FAULT_COUNTERS)
        recent, self._errors_reported = bad > self._errors_reported, bad
        if snapshot.fault:
            return ERROR, snapshot.reason, values
        if not self.active:
            return WARN, "inactive", values
        if recent:  # new bad input since the last report (older ones stay counted in the values)
            return WARN, f"bad input: {self._last_error}", values
        if snapshot.active:
            return OK, f"advisory stop: {snapshot.reason}", values
        return OK, "running", values

    def _on_diagnostics(self) -> None:
        level, message, values = self.diagnostics()
        self.pub_diagnostics.publish(
            diagnostic_array(self.port, self.port.now_ns(), level, message, values, hardware_id=self.port.name)
        )


def _decode_frame():
    from vispeak_ros.ros.conversions.image import decode_frame

    return decode_frame
