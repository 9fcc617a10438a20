"""Keep tests, benchmarks and demos off the user's ROS graph: loopback-only Cyclone DDS and a free random domain.

Whatever the caller's environment says (ROS_DOMAIN_ID, CYCLONEDDS_URI, ROS_LOCALHOST_ONLY...), `isolated_env`
returns variables that put every participant on the loopback interface, without multicast, discovering peers by
unicast to 127.0.0.1 only, in a domain id no other participant on this host is using. Child processes get the
same variables, so a test's publisher and subscriber processes meet each other and nobody else.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Mapping

# DDSI-RTPS port mapping (spec 9.6.1.1, Cyclone's defaults): PB + DG*domain + d1 + PG*participant_index.
PORT_BASE = 7400
DOMAIN_GAIN = 250
PARTICIPANT_GAIN = 2
UNICAST_DISCOVERY_OFFSET = 10
# ROS 2 documents 0-101 and 215-232 as safe on Linux (ephemeral ports start at 32768); the whole 1-232 range maps
# to valid ports. We skip 0 (the ROS default, where users' graphs live).
MIN_DOMAIN_ID = 1
MAX_DOMAIN_ID = 232
# How many participants per domain per host the loopback config can discover (Cyclone's default is 9).
MAX_PARTICIPANTS = 32

# Variables that would pull an isolated process back onto a user's graph; `isolated_env` replaces or removes them.
ROS_GRAPH_VARIABLES = (
    "ROS_DOMAIN_ID",
    "ROS_LOCALHOST_ONLY",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_STATIC_PEERS",
    "CYCLONEDDS_URI",
    "RMW_IMPLEMENTATION",
)


def loopback_config_xml(*, peers: bool = True, max_participants: int = MAX_PARTICIPANTS) -> str:
    """A Cyclone DDS configuration that never leaves the loopback interface.

    `peers=False` gives ROS_AUTOMATIC_DISCOVERY_RANGE=OFF semantics: no discovery beyond this process.
    """
    peer = '<Peers><Peer address="127.0.0.1"/></Peers>' if peers else ""
    return (
        "<CycloneDDS><Domain>"
        '<General><Interfaces><NetworkInterface name="lo"/></Interfaces>'
        "<AllowMulticast>false</AllowMulticast>"
        # Loopback's MTU is 64 KiB: larger fragments than the 1344 B default halve a 640x480 frame's latency
        # (benchmarks/dds.py: image p50 6.6 -> 3.5 ms). Receivers accept any fragment size (RTPS DATA_FRAG).
        "<MaxMessageSize>65500B</MaxMessageSize><FragmentSize>16000B</FragmentSize></General>"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{max_participants}</MaxAutoParticipantIndex>{peer}</Discovery>"
        "</Domain></CycloneDDS>"
    )


def domain_ports(domain_id: int) -> range:
    """The UDP ports a domain's participants use (discovery and user traffic, unicast and multicast)."""
    start = PORT_BASE + DOMAIN_GAIN * domain_id
    return range(start, start + DOMAIN_GAIN)


def domain_in_use(domain_id: int) -> bool:
    """True when some participant on this host already holds the domain's first unicast discovery port."""
    port = PORT_BASE + DOMAIN_GAIN * domain_id + UNICAST_DISCOVERY_OFFSET
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def pick_domain_id(rng: random.Random | None = None, attempts: int = 64) -> int:
    """A random domain id in 1..232 whose ports no participant on this host holds."""
    rng = rng or random.SystemRandom()
    for _ in range(attempts):
        candidate = rng.randint(MIN_DOMAIN_ID, MAX_DOMAIN_ID)
        if not domain_in_use(candidate):
            return candidate
    raise RuntimeError(f"isolation: no free DDS domain id in {MIN_DOMAIN_ID}-{MAX_DOMAIN_ID} after {attempts} tries")


def isolated_env(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """`base` (default: os.environ) with the ROS graph variables replaced by loopback-only, random-domain ones."""
    env = dict(os.environ if base is None else base)
    for name in ROS_GRAPH_VARIABLES:
        env.pop(name, None)
    env["ROS_DOMAIN_ID"] = str(pick_domain_id() if domain_id is None else domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["CYCLONEDDS_URI"] = loopback_config_xml()
    return env


def isolate_this_process(domain_id: int | None = None) -> int:
    """Apply `isolated_env` to os.environ (before any participant is created); returns the domain id."""
    env = isolated_env(domain_id=domain_id)
    for name in ROS_GRAPH_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update({k: env[k] for k in ROS_GRAPH_VARIABLES if k in env})
    return int(env["ROS_DOMAIN_ID"])
