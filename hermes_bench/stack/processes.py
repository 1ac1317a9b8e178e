"""Child processes the harness starts, waits for and stops, with their output in a log file."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from hermes_bench.errors import ProcessStartError
from hermes_bench.redaction import redact_text

log = logging.getLogger("hermes_bench")

_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024
# The signals that end a harness command (hermes_bench.harness.cli turns them into Ctrl-C).
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs; they arrive once it is done.

    A fork runs the interpreter's at-fork callbacks (logging's lock release among them), and a
    KeyboardInterrupt raised inside one of them is printed and dropped: a Ctrl-C landing while a
    child is started would be lost. Held, it is raised after the start, where it can stop us.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _child_setup_hook() -> Callable[[], None]:
    """Build a preexec_fn: the child takes the stop signals again and, on Linux, gets SIGTERM
    when the harness dies.

    Linux sends that signal when the *thread* that started the child ends, not the process:
    start children from a thread that lives as long as they should (the main thread).
    """
    # Load libc before fork: dlopen in the forked child is not async-signal-safe.
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    parent_pid = os.getpid()

    def hook() -> None:
        # The child inherits the mask of stop_signals_held(): it must hear its own stop.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if libc is None:
            return
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ManagedProcess:
    """One child process: started in its own session, output to `log_path`, stopped on demand.

    `env` is the complete environment of the child (None inherits the harness's). The child
    gets SIGTERM if the thread that started it dies (Linux PR_SET_PDEATHSIG).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._group_cleared = False
        self._log_offset = 0  # where this run's output starts in the (appended) log

    def __repr__(self) -> str:
        # argv may carry secrets (e.g. --requirepass), so only the program is shown.
        return f"ManagedProcess({self.name!r}, {Path(self.argv[0]).name}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        """Process id once started, else None."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        """True while the process has been started and has not exited."""
        return self._popen is not None and self._exit_code() is None

    @property
    def returncode(self) -> int | None:
        """Exit code once it exited (negative: killed by that signal), else None."""
        return self._exit_code() if self._popen is not None else None

    def _exit_code(self) -> int | None:
        """The exit code once the process ended, else None. Never reaps it: only stop() does,
        after signalling the group (see there)."""
        assert self._popen is not None
        if self._popen.returncode is not None:
            return self._popen.returncode
        try:
            info = os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped elsewhere; Popen then knows the code
            return self._popen.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def start(self) -> ManagedProcess:
        """Launch the process; stdout and stderr are appended to `log_path`."""
        if self.running:
            return self
        if self._popen is not None:
            self.stop()  # reap the previous run, which exited on its own, and its helpers
        self._group_cleared = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"--- hermes-bench starts {self.name} ---\n".encode())
            log_file.flush()
            self._log_offset = log_file.tell()
            try:
                with stop_signals_held():
                    self._popen = subprocess.Popen(
                        self.argv,
                        stdin=subprocess.DEVNULL,
                        # A file, never a pipe: a pipe nobody reads fills up and blocks the child.
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        env=self.env,
                        cwd=self.cwd,
                        # Own session: Ctrl-C in the terminal reaches only the harness, which then
                        # stops children in order.
                        start_new_session=True,
                        preexec_fn=_child_setup_hook(),
                    )
            except OSError as exc:
                raise ProcessStartError(
                    f"cannot start {self.name} ({self.argv[0]}): {exc.strerror or exc}; "
                    "check that the program is installed and executable"
                ) from exc
        log.debug("started %s pid=%s log=%s", self.name, self.pid, self.log_path)
        return self

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last `lines` lines of the log, with secrets redacted."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - _TAIL_BYTES))
                data = log_file.read()
        except OSError:
            return "(no log)"
        text = data.decode("utf-8", errors="replace")
        return redact_text("\n".join(text.splitlines()[-lines:]))

    def log_since_start(self) -> str:
        """What the process wrote since the last start() (earlier runs share the log file)."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_offset)
                return log_file.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        """Wait until this run's output matches `pattern`; fails like wait_ready()."""
        found: list[re.Match[str]] = []

        def check() -> bool:
            match = pattern.search(self.log_since_start())
            if match is not None:
                found.append(match)
            return match is not None

        self.wait_ready(check, timeout_s)
        return found[-1]

    def wait_ready(self, check: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> None:
        """Poll `check` until it returns True; raise ProcessStartError if the process exits
        first or `timeout_s` passes (then the process is stopped)."""
        if self._popen is None:
            raise ProcessStartError(f"{self.name} was never started: call start() first")
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._exit_code()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} {_describe_exit(code)} before it was ready. "
                    f"Last lines of {self.log_path}:\n{self.log_tail()}\n"
                    "Fix the cause shown above (run the command by hand to see it fail) "
                    "and start again."
                )
            try:
                if check():
                    return
            except Exception as exc:  # a readiness probe failing just means "not yet"
                log.debug("%s not ready yet: %s", self.name, exc)
            if time.monotonic() >= deadline:
                self.stop()
                raise ProcessStartError(
                    f"{self.name} was not ready after {timeout_s:g} s and was stopped. "
                    f"Last lines of {self.log_path}:\n{self.log_tail()}\n"
                    "Look for the cause above; on a slow or busy machine raise the timeout."
                )
            time.sleep(poll_s)

    def wait(self, timeout_s: float | None, poll_s: float = 0.01) -> int | None:
        """Wait up to `timeout_s` (None: no limit) for the process to exit; its exit code, or
        None if still running."""
        if self._popen is None:
            return None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (code := self._exit_code()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(poll_s)
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        try:
            # The child leads its own process group: signal helpers it forked too.
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self._popen.send_signal(sig)

    def kill(self) -> int | None:
        """SIGKILL to the process and its group at once, as a crash would end it."""
        if self._popen is None:
            return None
        self._signal_group(signal.SIGKILL)
        self._group_cleared = True
        return self._popen.wait()

    def stop(self, timeout_s: float = 5) -> int | None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL. Idempotent; returns the exit code."""
        if self._popen is None:
            return None
        if self._exit_code() is None:
            self._signal_group(signal.SIGTERM)
            if self.wait(timeout_s) is None:
                log.warning("%s ignored SIGTERM for %g s; killing it", self.name, timeout_s)
                self._signal_group(signal.SIGKILL)
                self.wait(None)
        if not self._group_cleared:
            # Helpers left behind in the group would keep ports and files busy. Sent before
            # the leader is reaped: its pid (the group's id) cannot be reused until then, so
            # this reaches our group and nobody else's.
            self._signal_group(signal.SIGKILL)
            self._group_cleared = True
        code = self._popen.wait()
        log.debug("stopped %s (%s)", self.name, _describe_exit(code))
        return code

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Stoppable(Protocol):
    """Anything a ProcessGroup can stop: a ManagedProcess, an EmbeddedRedis."""

    def stop(self) -> object: ...


_S = TypeVar("_S", bound=Stoppable)


class ProcessGroup:
    """Processes in start order; stop_all() stops them in reverse, attempting every one."""

    def __init__(self) -> None:
        self._members: list[Stoppable] = []

    def add(self, proc: _S) -> _S:
        """Register `proc` (already started or about to be) and return it."""
        self._members.append(proc)
        return proc

    def __len__(self) -> int:
        return len(self._members)

    def stop_all(self) -> None:
        """Stop every member, last started first; a failure is logged and the rest still stop."""
        interrupted: BaseException | None = None
        while self._members:
            proc = self._members.pop()
            name = getattr(proc, "name", repr(proc))
            try:
                proc.stop()
            except KeyboardInterrupt as exc:  # a second Ctrl-C must not orphan the rest
                interrupted = exc
            except Exception:
                log.exception("could not stop %s; stopping the others anyway", name)
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
