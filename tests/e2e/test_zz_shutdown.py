"""Runs last in the suite: Ctrl-C stops the local stack cleanly."""

import signal

from tests.e2e.conftest import RunningStack


def test_ctrl_c_stops_the_stack_cleanly(stack: RunningStack):
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=20) == 0
    assert not any("Traceback" in line for line in stack.stderr), "\n".join(stack.stderr)
