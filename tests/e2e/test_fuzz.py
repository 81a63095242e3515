"""A bounded Schemathesis run (tests/e2e/fuzz.py; `make fuzz` runs it at length) against a
real server on each store, anonymous and with an auditor key: no 5xx, no undocumented status
or content type, every answer as its schema documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import STORES, fresh_store
from tests.e2e.fuzz import fuzz, seed_demo, serving

EXAMPLES = 25  # per operation and phase; `make fuzz` runs hundreds


@pytest.fixture(scope="module", params=STORES)
def demo_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, str]]:
    for settings in fresh_store(request, tmp_path_factory):
        # 45 learners: the ids in the OpenAPI examples (L000042, org 500104) exist
        key = seed_demo(settings, 45, tmp_path_factory.mktemp("demo"))
        with serving(settings) as base_url:
            yield base_url, key


def test_schemathesis_finds_no_server_error_or_schema_violation(demo_server, tmp_path):
    base_url, key = demo_server
    runs = fuzz(base_url, key, examples=EXAMPLES, seed=20210104, report_dir=tmp_path)
    for run in runs:
        assert run.returncode == 0, run.output
        assert run.requests >= 300, run.summary
    print("; ".join(run.summary for run in runs))
