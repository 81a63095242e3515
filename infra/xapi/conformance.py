"""`make conformance`: the ADL xAPI conformance suite against a fresh server.

Serves the app on a free loopback port with an empty SQLite store in a temporary folder,
makes an lrs key, runs the suite's runner (XAPI_SUITE_RUNNER, default
../shared/xapi/run-suite.sh beside the checkout) with it and exits with the runner's status.
`--serve` only serves and prints the endpoint and credentials, for running it by hand.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from api.app import create_app
from infra.bench.datasets import PgSchema
from infra.bootstrap import build_services
from infra.serve import app_in_thread
from infra.settings import Settings
from infra.store.keys import KeyStore

# The workplace keeps the ADL suite and its runner in shared/ beside the project's checkout;
# a checkout made elsewhere on the same machine (a CI clone) finds it at its usual place.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNNER_PLACES = (PROJECT_ROOT.parent / "shared/xapi/run-suite.sh",
                 Path("/work/shared/xapi/run-suite.sh"))


def suite_runner() -> Path:
    """XAPI_SUITE_RUNNER when set, else the first runner found in RUNNER_PLACES (else the
    first place, so that the error names where it was looked for)."""
    configured = os.environ.get("XAPI_SUITE_RUNNER")
    if configured:
        return Path(configured)
    return next((place for place in RUNNER_PLACES if place.exists()), RUNNER_PLACES[0])


@contextmanager
def lrs_server(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(endpoint, user, password) of an LRS on the (fresh) store of `settings`."""
    keys = KeyStore(settings)
    user, password = keys.create("lrs", "conformance", basic=True).split(":", 1)
    keys.close()
    services = build_services(settings)
    try:
        with app_in_thread(create_app(services)) as base_url:
            yield f"{base_url}/xapi", user, password
    finally:
        if services.lrs is not None:
            services.lrs.close()  # type: ignore[attr-defined]
        services.views.close()
        services.ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve only, until Ctrl-C")
    parser.add_argument("--postgres-url", help="a fresh schema there instead of SQLite")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.postgres_url:
            schema = stack.enter_context(PgSchema(args.postgres_url))
            settings = Settings(database_url=args.postgres_url, database_schema=schema)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="xapi-lrs-"))
            settings = Settings(database_url=f"sqlite:///{Path(folder) / 'lrs.db'}")
        return _run(settings, serve_only=args.serve)


def _run(settings: Settings, *, serve_only: bool) -> int:
    runner = str(suite_runner())
    with lrs_server(settings) as (endpoint, user, password):
        if serve_only:
            print(f"{endpoint} {user} {password}", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        started = time.monotonic()
        result = subprocess.run([runner, endpoint, user, password], check=False)
        print(f"conformance run took {time.monotonic() - started:.0f} s", file=sys.stderr)
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
