"""ManagedProcess, ProcessGroup and port helpers against real child processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from hermes_bench.errors import ConfigError, ProcessStartError
from hermes_bench.sockets import bind_tcp
from hermes_bench.stack.ports import ensure_port_free, free_port
from hermes_bench.stack.processes import (
    STOP_SIGNALS,
    ManagedProcess,
    ProcessGroup,
    stop_signals_held,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def python_process(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code], tmp_path / f"{name}.log")


def log_contains(proc: ManagedProcess, text: str) -> bool:
    return text in proc.log_path.read_text(errors="replace")


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(1)
    return sock


@pytest.mark.e2e
def test_exit_before_ready_reports_code_and_redacted_log_tail(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for i in range(50): print('noise', i)\n"
        "print('cannot reach redis://:hunter2@db:6379/0')\n"
        "print('fatal: bad config', file=sys.stderr)\n"
        "sys.exit(3)"
    )
    proc = python_process(tmp_path, "crasher", code).start()
    with pytest.raises(ProcessStartError) as info:
        proc.wait_ready(lambda: False, timeout_s=30)
    message = str(info.value)
    assert "crasher" in message
    assert "code 3" in message
    assert "fatal: bad config" in message  # stderr lands in the same log
    assert "hunter2" not in message
    assert "noise 0" not in message  # only the tail, not the whole log
    assert proc.returncode == 3


@pytest.mark.e2e
def test_not_ready_in_time_is_stopped_and_reported(tmp_path: Path) -> None:
    proc = python_process(tmp_path, "sleepy", "import time; time.sleep(60)").start()
    with pytest.raises(ProcessStartError, match="sleepy was not ready"):
        proc.wait_ready(lambda: False, timeout_s=0.2)
    assert not proc.running


@pytest.mark.e2e
def test_missing_program_is_a_start_error(tmp_path: Path) -> None:
    proc = ManagedProcess("ghost", [str(tmp_path / "no-such-program")], tmp_path / "ghost.log")
    with pytest.raises(ProcessStartError, match="ghost"):
        proc.start()


@pytest.mark.e2e
def test_stop_is_idempotent_and_reaps(tmp_path: Path) -> None:
    proc = python_process(tmp_path, "sleeper", "import time; time.sleep(60)").start()
    pid = proc.pid
    assert pid is not None and proc.running
    code = proc.stop()
    assert code == -signal.SIGTERM
    assert proc.stop() == code
    assert not proc.running
    assert not psutil.pid_exists(pid) or is_gone(pid)


@pytest.mark.e2e
def test_sigterm_ignored_gets_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring', flush=True)\n"
        "time.sleep(60)"
    )
    proc = python_process(tmp_path, "stubborn", code).start()
    # Wait until the handler is installed, or SIGTERM would kill it and prove nothing.
    proc.wait_ready(lambda: log_contains(proc, "ignoring"), timeout_s=30)
    assert proc.stop(timeout_s=1) == -signal.SIGKILL
    assert not proc.running


@pytest.mark.e2e
def test_output_goes_to_log_file(tmp_path: Path) -> None:
    # Much more than a pipe buffer: a pipe nobody reads would block the child.
    code = "import sys\nfor i in range(20000): print('line', i)\nprint('done')"
    proc = python_process(tmp_path, "chatty", code).start()
    assert proc.wait(timeout_s=30) == 0
    assert log_contains(proc, "line 19999\ndone")
    proc.stop()


class Recorder:
    """A Stoppable that records the order it was stopped in, or fails on purpose."""

    def __init__(self, name: str, stopped: list[str], fail: bool = False) -> None:
        self.name = name
        self.stopped = stopped
        self.fail = fail

    def stop(self) -> None:
        self.stopped.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} refuses to stop")


@pytest.mark.e2e
def test_group_stops_in_reverse_even_when_one_fails(tmp_path: Path) -> None:
    stopped: list[str] = []
    with ProcessGroup() as group:
        first = group.add(python_process(tmp_path, "first", "import time; time.sleep(60)"))
        group.add(Recorder("a", stopped))
        group.add(Recorder("b", stopped, fail=True))
        last = group.add(python_process(tmp_path, "last", "import time; time.sleep(60)"))
        group.add(Recorder("c", stopped))
        first.start()
        last.start()
    assert stopped == ["c", "b", "a"]
    assert not first.running and not last.running
    assert len(group) == 0


def test_ports_free_and_in_use() -> None:
    port = free_port()
    ensure_port_free("127.0.0.1", port)
    with listening_socket() as sock:
        taken = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {taken} on 127.0.0.1 is already in use"):
            ensure_port_free("127.0.0.1", taken)
    with bind_tcp("127.0.0.1", 0) as bound:
        assert bound.getsockname()[1] > 0


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_port_out_of_range_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match=f"port {port} is not a TCP port"):
        bind_tcp("127.0.0.1", port)


@pytest.mark.e2e
def test_wait_for_log_sees_only_the_current_run(tmp_path: Path) -> None:
    code = "import secrets, time; print('token', secrets.token_hex(4), flush=True); time.sleep(60)"
    proc = python_process(tmp_path, "announcer", code)
    pattern = re.compile(r"token (\w+)")
    tokens = []
    for _ in range(2):
        proc.start()
        tokens.append(proc.wait_for_log(pattern, timeout_s=30).group(1))
        proc.stop()
    assert tokens[0] != tokens[1]
    assert proc.log_path.read_text().count("token") == 2  # both runs share the log file


@pytest.mark.e2e
def test_stop_kills_helpers_left_in_the_group(tmp_path: Path) -> None:
    # The leader starts a helper in its process group, then exits on its own.
    code = (
        "import subprocess, sys\n"
        "helper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('helper', helper.pid, flush=True)"
    )
    proc = python_process(tmp_path, "leader", code).start()
    assert proc.wait(timeout_s=30) == 0
    found = re.search(r"helper (\d+)", proc.log_since_start())
    assert found is not None
    helper_pid = int(found.group(1))
    leader_pid = proc.pid
    assert leader_pid is not None
    # Not reaped yet, so its pid (the group's id) cannot be reused before stop() signals it.
    assert psutil.Process(leader_pid).status() == psutil.STATUS_ZOMBIE
    assert not is_gone(helper_pid)
    assert proc.stop() == 0
    deadline = time.monotonic() + 10
    while not is_gone(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert is_gone(helper_pid)


PARENT = """
import sys, time
from pathlib import Path
from hermes_bench.stack.processes import ManagedProcess
child = ManagedProcess("orphan", [sys.executable, "-c", "import time; time.sleep(60)"],
                       Path(sys.argv[1]))
child.start()
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.e2e
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_child_dies_when_harness_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "orphan.log")],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not is_gone(child_pid)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 10
    while not is_gone(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert is_gone(child_pid), "child outlived the killed harness"
    finally:
        if not is_gone(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_stop_signals_held_arrive_once_the_block_is_done() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: received.append(signum))
    try:
        with stop_signals_held():
            # Aimed at this thread: a process-wide signal may go to another thread of the test
            # process (a test client's portal), which does not hold it.
            signal.pthread_kill(threading.get_ident(), signal.SIGHUP)
            time.sleep(0.01)
            assert received == []  # held: a fork's at-fork callbacks cannot swallow it
        assert received == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


def _blocked_signals(pid: int) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    (mask,) = re.findall(r"^SigBlk:\s*([0-9a-f]+)$", status, re.M)
    bits = int(mask, 16)
    return {number for number in range(1, 65) if bits >> (number - 1) & 1}


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_child_hears_the_stop_signals_held_while_it_started(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"]
    with ManagedProcess("sleeper", argv, tmp_path / "sleeper.log") as proc:
        proc.wait_for_log(re.compile("up"), timeout_s=20)
        assert proc.pid is not None
        assert not _blocked_signals(proc.pid) & STOP_SIGNALS
        assert not _blocked_signals(os.getpid()) & STOP_SIGNALS  # and the harness again
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout_s=10) == -signal.SIGTERM
