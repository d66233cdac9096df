"""Real server processes for end-to-end tests: free ports and a managed child process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """GETs a URL; returns (status, body) and never raises for HTTP error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate: object, timeout_s: float = 30.0, interval_s: float = 0.1) -> bool:
    """Polls a zero-argument callable until it returns something true, or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if callable(predicate) and predicate():
                return True
        time.sleep(interval_s)
    return False


class ServerProcess:
    """Runs `watchkeeper ARGS...` (or another command) and stops it on exit.

    Output goes to a log file in `workdir` so a failing test can show it.
    """

    def __init__(
        self,
        args: Sequence[str],
        workdir: Path,
        *,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"process-{os.getpid()}-{time.monotonic_ns()}.log"
        base = (
            list(command) if command is not None else [sys.executable, "-m", "watchkeeper.cli.main"]
        )
        self.argv = [*base, *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Starts the process."""
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        return self

    def wait_ready(self, url: str, timeout_s: float = 30.0) -> None:
        """Waits until `url` answers 200; raises with the log when it does not."""

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}:\n{self.log()}")
            return http_get(url, timeout_s=2.0)[0] == 200

        if not wait_until(ready, timeout_s):
            raise TimeoutError(f"{url} not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        """The process's output so far."""
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def signal(self, sig: signal.Signals) -> None:
        """Sends a signal to the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Stops the process with SIGTERM (SIGKILL after the timeout); returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """Kills the process with SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Self:
        return self if self.proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running(args: Sequence[str], workdir: Path, ready_url: str) -> Iterator[ServerProcess]:
    """Starts a watchkeeper process, waits until ready_url answers, stops it afterwards."""
    proc = ServerProcess(args, workdir).start()
    try:
        proc.wait_ready(ready_url)
        yield proc
    finally:
        proc.stop()


__all__ = ["ServerProcess", "free_port", "http_get", "running", "wait_until"]
