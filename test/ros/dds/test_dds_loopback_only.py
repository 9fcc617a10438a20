"""No DDS traffic leaves the loopback interface during a test run.

How: packet sockets (AF_PACKET, what tcpdump uses) capture every frame on every interface while two peer
processes discover each other and exchange images in the test's isolated domain. A frame is ours when it is UDP
carrying an RTPS message (payload starts with b"RTPS") or UDP to/from the domain's port range. The check is
robust to unrelated background traffic because it counts only those frames; a positive control on `lo` proves the
capture and the parser see the exchange, so "nothing on eth0" is not an artefact of a blind capture.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
from collections import Counter
from pathlib import Path

import pytest
from dds_procs import finish, start_peer

from vispeak_ros.ros.isolation import domain_ports

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _interfaces() -> list[str]:
    """Interfaces that are up (IFF_UP): the only ones that can carry traffic."""
    return sorted(p.name for p in Path("/sys/class/net").iterdir() if int((p / "flags").read_text(), 16) & 0x1)


def _open_capture(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


def _udp(frame: bytes) -> tuple[str, int, int, bytes] | None:
    """(destination address, source port, destination port, payload) of an Ethernet-framed UDP datagram."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800 and len(frame) >= 34:
        header_len = (frame[14] & 0x0F) * 4
        if frame[23] != 17:
            return None
        dst = socket.inet_ntoa(frame[30:34])
        offset = 14 + header_len
    elif ethertype == 0x86DD and len(frame) >= 62:
        if frame[20] != 17:
            return None
        dst = socket.inet_ntop(socket.AF_INET6, frame[38:54])
        offset = 54
    else:
        return None
    if len(frame) < offset + 8:
        return None
    sport, dport = struct.unpack_from("!HH", frame, offset)
    return dst, sport, dport, frame[offset + 8 : offset + 12]


class Capture(threading.Thread):
    """Counts DDS frames per interface (and outgoing ones separately) until stopped."""

    def __init__(self, interfaces: list[str], ports: range) -> None:
        super().__init__(daemon=True)
        self.sockets = {_open_capture(name): name for name in interfaces}
        self.ports = ports
        self.dds = Counter()
        self.dds_outgoing = Counter()
        self.frames = Counter()
        self.destinations: dict[str, set[str]] = {name: set() for name in interfaces}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            ready, _, _ = select.select(list(self.sockets), [], [], 0.05)
            for sock in ready:
                name = self.sockets[sock]
                while True:
                    try:
                        frame, address = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    self.frames[name] += 1
                    udp = _udp(frame)
                    if udp is None:
                        continue
                    dst, sport, dport, payload = udp
                    if payload == b"RTPS" or sport in self.ports or dport in self.ports:
                        self.dds[name] += 1
                        self.destinations[name].add(dst)
                        if address[2] == PACKET_OUTGOING:
                            self.dds_outgoing[name] += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        for sock in self.sockets:
            sock.close()


def test_no_dds_traffic_leaves_loopback(dds_env: dict[str, str]) -> None:
    interfaces = _interfaces()
    assert "lo" in interfaces
    try:
        capture = Capture(interfaces, domain_ports(int(dds_env["ROS_DOMAIN_ID"])))
    except PermissionError:
        pytest.skip(f"packet capture needs CAP_NET_RAW (uid {os.getuid()}); cannot observe the interfaces")
    capture.start()
    try:
        subscriber = start_peer(dds_env, "subscribe", "--streams", "image,compressed", "--count", "3")
        assert subscriber.stdout.readline().strip() == "ready"
        publisher = start_peer(dds_env, "publish", "--streams", "image,compressed", "--count", "3")
        sent, _ = finish(publisher)
        received, _ = finish(subscriber)
    finally:
        capture.stop()
    print(f"frames {dict(capture.frames)}, DDS frames {dict(capture.dds)}")
    assert received["received"] == sent["sent"]  # the exchange really happened
    assert capture.dds["lo"] > 10, f"positive control: no RTPS seen on lo ({dict(capture.frames)} frames)"
    assert capture.destinations["lo"] <= {"127.0.0.1"}, capture.destinations["lo"]
    leaked = {name: count for name, count in capture.dds.items() if name != "lo" and count}
    assert not leaked, f"DDS frames on non-loopback interfaces: {leaked}; destinations {capture.destinations}"
