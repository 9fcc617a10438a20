"""Reliability fixtures: each DDS test in its own random domain on loopback (vispeak_ros.ros.isolation), whatever
the caller's ROS environment says; every DDS node a test creates is shut down after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vispeak_ros.ros.isolation import ROS_GRAPH_VARIABLES, isolated_env


@pytest.fixture
def dds_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = isolated_env()
    for name in ROS_GRAPH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])
    return env


@pytest.fixture
def make_node(dds_env: dict[str, str]) -> Iterator[Callable[..., object]]:
    from vispeak_ros.ros.adapters.dds_adapter import DdsNode

    nodes: list[DdsNode] = []

    def factory(name: str, **kwargs: object) -> DdsNode:
        nodes.append(DdsNode(name, **kwargs))
        return nodes[-1]

    yield factory
    for node in reversed(nodes):
        node.shutdown()
