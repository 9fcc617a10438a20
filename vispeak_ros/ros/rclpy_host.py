"""`vispeak-node` on a robot: the node logic in an rclpy lifecycle node that starts itself.

Lifecycle: configure = validate parameters and load the model (slow), activate = subscribe, publish, start the
worker and the stop-lock heartbeat, deactivate = stop processing (the heartbeat stops, so twist_mux's lock
timeout engages), cleanup = release the model, shutdown = stop everything. Launch on Humble cannot drive a
lifecycle node to active (``autostart`` in launch_ros arrived with Jazzy), so with the ``autostart`` parameter
(default true) `run()` configures and activates the node itself, in the main thread before it spins: the model
never loads inside a callback. With ``autostart:=false`` a lifecycle manager or ``ros2 lifecycle set /vispeak
configure`` (then ``activate``) drives it.

Executor: one single-threaded executor (the port's). Node-logic callbacks, parameter changes and lifecycle
transitions all run in the node's default, mutually exclusive callback group, so they never overlap and the node
logic needs no locks (the port contract). That is safe because callbacks are thin (convert and enqueue) and
inference runs in the node's worker thread; a transition requested at run time (``ros2 lifecycle set``) is
served between two callbacks. A configure requested that way loads the model on the executor thread: the node
is unconfigured then, so no heartbeat or input is held up that should not be.

Ctrl-C or SIGTERM (launch sends SIGINT, then SIGTERM): the node logic shuts down while the context is still up
(rclpy's own signal handlers are left out where the distro allows), the node is destroyed, and `run()` returns 0.

Imports rclpy only inside `run()`, so this module can be imported (and `vispeak-node` can choose between rclpy
and Cyclone DDS) where rclpy is missing.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from vispeak_ros.ros import port

NODE_NAME = "vispeak"
AUTOSTART = "autostart"
AUTOSTART_DESCRIPTOR = port.ParameterDescriptor(
    "configure and activate at start (launch on Humble cannot autostart lifecycle nodes); false: wait for "
    "lifecycle transitions (ros2 lifecycle set, a lifecycle manager)",
    read_only=True,
)
# The transitions of the lifecycle state machine and the node-logic methods they call, with the logic's state
# after each one succeeds.
TRANSITIONS = {
    "configure": ("configure", "inactive"),
    "activate": ("activate", "active"),
    "deactivate": ("deactivate", "inactive"),
    "cleanup": ("cleanup", "unconfigured"),
    "shutdown": ("shutdown", "finalized"),
}


def _lifecycle_node_class() -> type:
    """The LifecycleNode subclass, built on first use so that this module imports without rclpy."""
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    class VispeakLifecycleNode(LifecycleNode):
        """Maps rclpy's transition callbacks onto the node logic; a NodeError fails the transition with its
        one-line message logged, any other exception is logged and handled as ERROR (on_error releases)."""

        def __init__(self, node_name: str, **kwargs: Any) -> None:
            self.logic: Any = None
            self.node_error: type[BaseException] = Exception
            self.logic_state = "unconfigured"
            super().__init__(node_name, **kwargs)

        def attach(self, logic: Any, node_error: type[BaseException]) -> None:
            self.logic = logic
            self.node_error = node_error

        def _run(self, transition: str) -> Any:
            method, state_after = TRANSITIONS[transition]
            if self.logic is None:
                self.get_logger().error(f"{transition}: no node logic attached")
                return TransitionCallbackReturn.FAILURE
            try:
                getattr(self.logic, method)()
            except self.node_error as error:
                self.get_logger().error(f"{transition} failed: {error}")
                return TransitionCallbackReturn.FAILURE
            except Exception as error:
                self.get_logger().error(f"{transition} failed: {type(error).__name__}: {error}")
                return TransitionCallbackReturn.ERROR
            self.logic_state = state_after
            self.get_logger().info(f"{transition}: now {state_after}")
            return TransitionCallbackReturn.SUCCESS

        def on_configure(self, state: Any) -> Any:
            return self._run("configure")

        def on_activate(self, state: Any) -> Any:
            return self._run("activate")

        def on_deactivate(self, state: Any) -> Any:
            return self._run("deactivate")

        def on_cleanup(self, state: Any) -> Any:
            return self._run("cleanup")

        def on_shutdown(self, state: Any) -> Any:
            return self._run("shutdown")

        def on_error(self, state: Any) -> Any:
            """After an unexpected exception: bring the logic down so the node can be configured again."""
            for transition in ("deactivate", "cleanup"):
                needed = {"deactivate": "active", "cleanup": "inactive"}[transition]
                if self.logic_state == needed:
                    self._run(transition)
            return TransitionCallbackReturn.SUCCESS

    return VispeakLifecycleNode


def _autostart(node: Any, logger: Any) -> bool:
    """configure then activate; False (errors logged by the transitions) when either fails."""
    from rclpy.lifecycle import TransitionCallbackReturn

    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != TransitionCallbackReturn.SUCCESS:
            logger.fatal(f"autostart: {transition.__name__[len('trigger_') :]} failed; exiting")
            return False
    return True


def _own_signal_handling() -> dict[str, Any]:
    """Keep rclpy's signal handlers out (where the distro lets us): Ctrl-C then arrives as KeyboardInterrupt with
    the context still up, so the node can publish its last state and release the model before rclpy shuts down."""
    try:
        from rclpy.signals import SignalHandlerOptions
    except ImportError:
        return {}
    return {"signal_handler_options": SignalHandlerOptions.NO}


def _interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM (launch escalates to it) shuts down like Ctrl-C."""
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> int:
    """Host the vispeak node in rclpy until Ctrl-C or shutdown; 0 then, 1 when it cannot start.

    `argv` is the command line (default ``sys.argv``; rcl reads every element, so the program name is optional),
    from which rclpy takes its ``--ros-args`` (``-p name:=value``, ``--params-file FILE``, ``-r __ns:=/robot``,
    ``--log-level``...).
    """
    import rclpy

    from vispeak_ros.ros.adapters.rclpy_adapter import RclpyPort

    try:
        rclpy.init(args=list(sys.argv if argv is None else argv), **_own_signal_handling())
    except RuntimeError as error:  # rcl's RCLError: a malformed --ros-args rule, named in its message
        print(f"vispeak-node: error: {error}", file=sys.stderr)
        return 1
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    node: Any = None
    ros_port: RclpyPort | None = None
    logic: Any = None
    try:
        from vispeak_ros.ros.node import NodeError, VispeakNode

        node = _lifecycle_node_class()(NODE_NAME)
        ros_port = RclpyPort(node)
        try:
            logic = VispeakNode(ros_port)
            try:
                autostart = ros_port.get_parameter(AUTOSTART)  # the node logic may declare it itself
            except KeyError:
                autostart = ros_port.declare_parameter(AUTOSTART, True, AUTOSTART_DESCRIPTOR)
        except (NodeError, TypeError, ValueError) as error:  # bad parameter overrides: one line, no traceback
            ros_port.logger.fatal(str(error))
            return 1
        node.attach(logic, NodeError)
        if autostart:
            if not _autostart(node, ros_port.logger):
                return 1
        else:
            ros_port.logger.info(
                f"autostart is false: waiting for 'ros2 lifecycle set {node.get_fully_qualified_name()} configure', "
                "then 'activate'"
            )
        ros_port.spin()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if logic is not None:
            try:
                logic.shutdown()
            except Exception as error:  # shutting down anyway; say why it was not clean
                print(f"vispeak: node shutdown failed: {type(error).__name__}: {error}", file=sys.stderr)
        if ros_port is not None:
            ros_port.shutdown()
        elif node is not None:
            node.destroy_node()
        signal.signal(signal.SIGTERM, previous_sigterm)
        try_shutdown = getattr(rclpy, "try_shutdown", None)
        if try_shutdown is not None:
            try_shutdown()
        elif rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    raise SystemExit(run())
