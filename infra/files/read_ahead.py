"""A JSONL file read and validated ahead of the batches that record it, in file order.

Two ways, one contract: yield (line number, raw text, ParsedLine | Rejection) for every
non-empty line in file order, and move the progress bar by the bytes read. What is recorded,
and when, is decided by the caller.

- A thread: it validates the next lines while the writer waits on the store. The GIL lets
  only one of them run Python at a time, so on its own it hides validation only behind the
  store's waits.
- Worker processes (infra.validation_pool), for a large file on a machine with a core to
  spare: validation runs beside the writer. A valid fact comes back in its wire form, a
  rejection whole.

At most a few chunks of `chunk` lines wait in memory either way.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import IO, Any

from tqdm import tqdm

from domain.facts import from_wire, to_wire
from infra.files.jsonl_lines import ParsedLine, Rejection, read_line
from infra.validation_pool import ValidationPool, spare_cores

ReadLine = tuple[int, str, ParsedLine | Rejection]
RawChunk = tuple[list[tuple[int, str]], int]  # (line number, text) pairs, bytes they took
_END = object()

# Below this size a file is read by the thread: starting worker processes (a fork server
# that imports the validation code once) costs about as much as validating ~10,000 lines.
PROCESS_POOL_MIN_BYTES = 8 * 1024 * 1024


def validation_workers(file_size: int, requested: int | None) -> int:
    """How many worker processes validate a file of `file_size` bytes: `requested` when
    given (0: the thread), else one per core beyond the writer's, for a large file."""
    if requested is not None:
        return max(0, requested)
    if file_size < PROCESS_POOL_MIN_BYTES:
        return 0
    return spare_cores()


def read_ahead(handle: IO[bytes], bar: tqdm[Any], *, workers: int = 0,
               chunk: int = 500) -> Iterator[ReadLine]:
    """Every line of `handle`, read, validated `chunk` lines at a time ahead of the caller."""
    if workers > 0:
        return _read_in_processes(handle, bar, workers, chunk)
    return _read_in_thread(handle, bar, chunk)


def _raw_chunks(handle: IO[bytes], chunk: int) -> Iterator[RawChunk]:
    lines: list[tuple[int, str]] = []
    size = 0
    for number, raw_bytes in enumerate(handle, start=1):
        size += len(raw_bytes)
        raw = raw_bytes.decode("utf-8", errors="replace").strip()
        if raw:
            lines.append((number, raw))
        if len(lines) >= chunk:
            yield lines, size
            lines, size = [], 0
    if lines or size:
        yield lines, size


# -- a thread ------------------------------------------------------------------------------

def _read_in_thread(handle: IO[bytes], bar: tqdm[Any], chunk: int,
                    depth: int = 4) -> Iterator[ReadLine]:
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    reader = threading.Thread(target=_parse_chunks, args=(handle, put, chunk),
                              name="ingest-parse", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            lines, size = item
            bar.update(size)
            yield from lines
    finally:
        stop.set()
        reader.join(timeout=5)


def _parse_chunks(handle: IO[bytes], put: Callable[[Any], bool], chunk: int) -> None:
    """The read-ahead thread: read_line of every line, handed over a chunk at a time with
    the bytes it took; then _END, or the exception that stopped it."""
    try:
        for lines, size in _raw_chunks(handle, chunk):
            if not put(([(number, raw, read_line(number, raw)) for number, raw in lines],
                        size)):
                return
        put(_END)
    except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
        put(exc)


# -- worker processes ----------------------------------------------------------------------

def _read_in_processes(handle: IO[bytes], bar: tqdm[Any], workers: int,
                       chunk: int) -> Iterator[ReadLine]:
    depth = 2 * workers + 2  # chunks in flight: the workers never wait on the writer
    in_flight: deque[tuple[RawChunk, Future[list[Any]]]] = deque()
    pool = ValidationPool(workers, preload=__name__)
    try:
        for raw_chunk in _raw_chunks(handle, chunk):
            in_flight.append((raw_chunk, pool.submit(_validate_chunk, raw_chunk[0])))
            if len(in_flight) > depth:
                yield from _finished(*in_flight.popleft(), bar)
        while in_flight:
            yield from _finished(*in_flight.popleft(), bar)
    finally:
        pool.close()


def _finished(raw_chunk: RawChunk, future: Future[list[Any]], bar: tqdm[Any]
              ) -> Iterator[ReadLine]:
    lines, size = raw_chunk
    validated = future.result()
    bar.update(size)
    for (number, raw), item in zip(lines, validated, strict=True):
        if isinstance(item, Rejection):
            yield number, raw, item
        else:
            wire, exported_hash = item
            yield number, raw, ParsedLine(from_wire(wire), exported_hash)


def _validate_chunk(lines: list[tuple[int, str]]) -> list[Any]:
    """In a worker: read_line of each line; a valid fact in its wire form."""
    validated: list[Any] = []
    for number, raw in lines:
        parsed = read_line(number, raw)
        if isinstance(parsed, Rejection):
            validated.append(parsed)
        else:
            validated.append((to_wire(parsed.incoming), parsed.exported_hash))
    return validated
