#!/usr/bin/env bash
# vispeak_ros on a real ROS 2 install: colcon build, colcon test, the rclpy tests, and a launch smoke test
# (the node goes active by itself, takes camera frames, beats /vispeak/stop_lock, and stops cleanly on Ctrl-C).
#
# NOT RUN BY OUR CI (it has no ROS). Run it inside one of the images of docker/ (their working directory is the
# package source), or on a robot from the package source inside a colcon workspace (WS=<workspace> if the source
# is not at <workspace>/src/vispeak_ros). Exits non-zero at the first failing step, saying which.
#
# Environment knobs: WS, LAUNCH_ARGS (extra `name:=value` launch arguments), CAMERA_TOPIC (/camera/image_raw),
# STARTUP_TIMEOUT_S (180: the model loads before the node activates), FRAMES (90, sent at 30 fps).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WS="${WS:-$(cd "${SRC}/../.." && pwd)}"
LAUNCH_ARGS="${LAUNCH_ARGS:-}"
CAMERA_TOPIC="${CAMERA_TOPIC:-/camera/image_raw}"
STARTUP_TIMEOUT_S="${STARTUP_TIMEOUT_S:-180}"
FRAMES="${FRAMES:-90}"

step() { printf '\n=== ros_check: %s\n' "$*"; }
fail() { printf '\nros_check: FAILED: %s\n' "$*" >&2; exit 1; }

source_ros() {  # ROS setup scripts read unset variables
  set +u
  if [ -f /opt/ros_setup.sh ]; then
    source /opt/ros_setup.sh
  elif [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/${ROS_DISTRO}/setup.bash" ]; then
    source "/opt/ros/${ROS_DISTRO}/setup.bash"
  fi
  set -u
  command -v ros2 >/dev/null || fail "no ROS 2 found: source your ROS setup.bash (or set ROS_DISTRO) first"
}

source_ros
[ -d "${WS}/src" ] || fail "${WS} is not a colcon workspace (no src/); set WS"
cd "${WS}"

# Keep the check off the robot's graph: loopback only, a domain of its own.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID_CHECK:-$((150 + RANDOM % 80))}"
if [ "${ROS_DISTRO:-humble}" = "humble" ]; then
  export ROS_LOCALHOST_ONLY=1
else
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
fi

step "colcon build (${ROS_DISTRO:-?}, domain ${ROS_DOMAIN_ID})"
colcon build --packages-up-to vispeak_ros --event-handlers console_cohesion+ || fail "colcon build"

step "colcon test"
colcon test --packages-select vispeak_ros --event-handlers console_direct+ || fail "colcon test"
colcon test-result --verbose || fail "colcon test-result"

set +u
source "${WS}/install/setup.bash"
set -u

step "rclpy adapter and lifecycle host tests (against the installed package, outside the source tree)"
RUN_DIR="$(mktemp -d)"
(cd "${RUN_DIR}" && python3 -m pytest -c /dev/null --rootdir "${RUN_DIR}" -p no:cacheprovider -q -rs \
  "${SRC}/test/ros/with_rclpy") || fail "rclpy tests"

step "launch smoke: ros2 launch vispeak_ros assistant.launch.py ${LAUNCH_ARGS}"
LAUNCH_LOG="${RUN_DIR}/launch.log"
# shellcheck disable=SC2086  # LAUNCH_ARGS is a list of name:=value words
ros2 launch vispeak_ros assistant.launch.py ${LAUNCH_ARGS} >"${LAUNCH_LOG}" 2>&1 &
LAUNCH_PID=$!
trap 'kill -INT "${LAUNCH_PID}" 2>/dev/null || true' EXIT

CAMERA_TOPIC="${CAMERA_TOPIC}" STARTUP_TIMEOUT_S="${STARTUP_TIMEOUT_S}" FRAMES="${FRAMES}" python3 - <<'PY' \
  || { tail -n 40 "${LAUNCH_LOG}" >&2; fail "launch smoke"; }
"""Wait for /vispeak/state to say active, send camera frames, count /vispeak/stop_lock beats."""
import array
import os
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool
from vispeak_ros.msg import State

rclpy.init()
node = Node("vispeak_ros_check")
latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
states, beats = [], []
node.create_subscription(State, "/vispeak/state", states.append, latched)
# twist_mux subscribes locks reliable (the system default): check the heartbeat the way it will
node.create_subscription(Bool, "/vispeak/stop_lock", lambda m: beats.append((time.monotonic(), m.data)), 10)
camera = node.create_publisher(Image, os.environ["CAMERA_TOPIC"], 10)


def spin_until(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return condition()


if not spin_until(lambda: bool(states) and states[-1].active, float(os.environ["STARTUP_TIMEOUT_S"])):
    sys.exit(f"/vispeak/state did not report active (last: {states[-1] if states else 'nothing received'})")
print("node active:", "stop" if states[-1].stop_active else "no stop", flush=True)

width, height = 64, 48
for i in range(int(os.environ["FRAMES"])):
    shade = (i * 3) % 256
    frame = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    frame.header.stamp = node.get_clock().now().to_msg()
    frame.header.frame_id = "camera"
    frame.data = array.array("B", bytes([shade, 255 - shade, 128]) * (width * height))
    camera.publish(frame)
    spin_until(lambda: False, 1 / 30)
print(f"sent {os.environ['FRAMES']} frames of {width}x{height}", flush=True)

window_start = time.monotonic()
spin_until(lambda: False, 2.0)
recent = [b for b in beats if b[0] >= window_start]
if len(recent) < 4:  # lock_rate_hz >= 1 by its descriptor; the default 10 Hz gives about 20
    sys.exit(f"/vispeak/stop_lock: {len(recent)} beats in 2 s")
print(f"stop_lock heartbeat: {len(recent) / 2:.1f} Hz, last value {recent[-1][1]}", flush=True)
node.destroy_node()
rclpy.shutdown()
PY

step "stop (Ctrl-C)"
kill -INT "${LAUNCH_PID}"
for _ in $(seq 1 60); do
  kill -0 "${LAUNCH_PID}" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "${LAUNCH_PID}" 2>/dev/null; then
  kill -KILL "${LAUNCH_PID}"
  fail "ros2 launch did not stop within 30 s of Ctrl-C"
fi
trap - EXIT
wait "${LAUNCH_PID}" || true
if grep -q "process has died" "${LAUNCH_LOG}"; then
  tail -n 40 "${LAUNCH_LOG}" >&2
  fail "the node did not exit cleanly on Ctrl-C"
fi
grep -q "Traceback" "${LAUNCH_LOG}" && { tail -n 40 "${LAUNCH_LOG}" >&2; fail "a traceback in the launch log"; }

printf '\nros_check: all passed (build, tests, launch smoke) on ROS 2 %s\n' "${ROS_DISTRO:-?}"
