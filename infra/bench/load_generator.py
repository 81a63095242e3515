"""A small HTTP/1.1 load generator, run as its own process by `studyledger bench api`.

Keep-alive connections over raw asyncio streams (no client library in the hot loop), each
sending its next request as soon as the previous answer is read. Prints one JSON line:
requests, errors, seconds, requests/s, p50/p99 latency in ms, and the statuses seen.

    python -m infra.bench.load_generator URL_BASE --connections 16 --seconds 10 \
        [--header 'Authorization: Bearer ...'] [--paths-file paths.txt] \
        [--post-bodies-file bodies.jsonl --path /v1/events/batch]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _worker(host: str, port: int, requests: Iterator[bytes], deadline: float,
                  latencies: list[float], statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            raw = next(requests, None)
            if raw is None:
                break
            started = time.perf_counter()
            writer.write(raw)
            statuses[await _read_answer(reader)] += 1
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def _requests(args: argparse.Namespace, host: str) -> list[bytes]:
    headers = [f"Host: {host}", "Connection: keep-alive", *args.header]
    if args.post_bodies_file:
        out = []
        for body in Path(args.post_bodies_file).read_bytes().splitlines():
            lines = [f"POST {args.path} HTTP/1.1", *headers, "Content-Type: application/json",
                     f"Content-Length: {len(body)}"]
            out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return out
    paths = (Path(args.paths_file).read_text().split() if args.paths_file else [args.path])
    return [("\r\n".join([f"GET {p} HTTP/1.1", *headers]) + "\r\n\r\n").encode()
            for p in paths]


async def _run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    prepared = _requests(args, f"{host}:{port}")
    # Posted bodies are distinct facts, each sent once; GETs repeat until the deadline.
    requests = iter(prepared) if args.post_bodies_file else itertools.cycle(prepared)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(*(_worker(host, port, requests, deadline, latencies, statuses)
                           for _ in range(args.connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms), "seconds": round(elapsed, 2),
        "per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 2) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.load_generator")
    parser.add_argument("base_url")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--path", default="/health")
    parser.add_argument("--paths-file")
    parser.add_argument("--post-bodies-file")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_run(args))
    else:
        result = uvloop.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
