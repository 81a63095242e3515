"""The log as the projection runner reads it (in log order, stream by stream, the orgs'
facts) is the same whether the stored state is read straight through the transcoder or
through the library's mapper, as it must be when a compressor (or cipher) is configured.
Which way the state is read does not depend on the database: SQLite files here."""

from __future__ import annotations

from datetime import timedelta

from domain.application import LoggedFact, StudyLedger
from infra.bootstrap import eventsourcing_env
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from tests.conftest import sqlite_settings

ZLIB = {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}


def every_read(ledger: StudyLedger) -> list[list[LoggedFact]]:
    through = ledger.last_position()
    first = ledger.read_streams(through, None, 50)
    return [ledger.read_log(0, through), ledger.read_log(7, 30), first,
            ledger.read_streams(through, (first[-1].stream_id, first[-1].version), 10_000),
            ledger.read_org_log(through)]


def test_plain_and_compressed_stores_read_the_same_facts(tmp_path):
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=12, seed=3)
    reads = []
    for name, extra in (("plain", {}), ("zlib", ZLIB)):
        (tmp_path / name).mkdir()
        ledger = StudyLedger(env=eventsourcing_env(sqlite_settings(tmp_path / name)) | extra,
                             park_timeout=timedelta(days=1))
        assert (ledger.mapper.compressor is None) == (not extra)
        ingest_file(ledger, demo, rejections_path=tmp_path / "rejects", show_progress=False)
        reads.append([[(f.stream_id, f.version, f.event_id, f.fact, f.hash, f.prev_hash)
                       for f in read] for read in every_read(ledger)])
        ledger.close()
    plain, compressed = reads
    assert all(plain)  # every read returned facts
    assert plain == compressed
