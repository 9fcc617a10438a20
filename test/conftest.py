"""Shared test configuration: hypothesis runs derandomized, so every CI run sees the same examples; every DDS test
runs in its own random domain on the loopback interface (vispeak_ros.ros.isolation), whatever the caller's ROS
environment says, and every node a test creates is shut down after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from vispeak_ros.ros.isolation import ROS_GRAPH_VARIABLES, isolated_env

settings.register_profile(
    "vispeak", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("vispeak")


@pytest.fixture
def dds_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolate this process (and its children): loopback-only Cyclone config, a free random domain id."""
    env = isolated_env()
    for name in ROS_GRAPH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])
    return env


@pytest.fixture
def make_node(dds_env: dict[str, str]) -> Iterator[Callable[..., object]]:
    """Factory of DdsNodes in the test's isolated domain, all shut down at teardown."""
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode

    nodes: list[DdsNode] = []

    def factory(name: str, **kwargs: object) -> DdsNode:
        node = DdsNode(name, **kwargs)
        nodes.append(node)
        return node

    yield factory
    for node in reversed(nodes):
        node.shutdown()
