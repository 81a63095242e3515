"""`studyledger run`, `serve` and `keys`: the HTTP side of the command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from domain.application import StudyLedger
from infra.cli.common import EXIT_OK, CommandError, open_ledger
from infra.settings import Settings, display_url


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="load the demo district into an empty store, then serve")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="serve the HTTP API, with the projections running")
    p.add_argument("--host", help="default STUDYLEDGER_API_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, help="default STUDYLEDGER_API_PORT or 8000")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument("--no-project", action="store_true",
                   help="do not run the projections here (run `studyledger project` apart)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="API keys: create (prints the key alone), list, revoke")
    keys_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    k = keys_sub.add_parser("create", help="make a key; prints it alone on stdout")
    k.add_argument("--role", required=True, choices=["platform", "reviewer", "admin", "auditor",
                                                        "lrs"],
                   help="what the key may do (README: HTTP API, roles)")
    k.add_argument("--org", required=True, help="the org whose subtree the key covers")
    k.add_argument("--source", help="platform keys: the source their facts carry")
    k.add_argument("--basic", action="store_true",
                   help="print ID:SECRET for HTTP Basic (xAPI clients of an lrs key)")
    k.set_defaults(func=cmd_keys)
    k = keys_sub.add_parser("list", help="every key (never the secret)")
    k.set_defaults(func=cmd_keys)
    k = keys_sub.add_parser("revoke", help="revoke a key by its id")
    k.add_argument("key_id", help="the id `keys list` shows (never the secret)")
    k.set_defaults(func=cmd_keys)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: load the demo district into an empty store, bring the views up to date,
    then serve the HTTP API (with the projections running) until Ctrl-C."""
    from infra.bootstrap import build_projector, build_views
    from infra.serve import serve

    ledger = open_ledger(settings)
    demo_key = _load_demo_if_empty(ledger, settings)
    views = build_views(settings)
    projector = build_projector(settings, ledger, views=views)
    print(f"bringing the read views up to date ({projector.lag()} facts behind)", flush=True)
    projector.run_once()
    views.close()
    print_run_banner(settings, ledger.recorder.max_notification_id(), demo_key)
    serve(settings)
    return EXIT_OK


def _load_demo_if_empty(ledger: StudyLedger, settings: Settings) -> str | None:
    """On an empty store: the demo district, and an auditor key for it (returned)."""
    from infra.cli.store import DEMO_OUT, load_demo
    from infra.store.keys import KeyStore

    if ledger.recorder.max_notification_id():
        return None
    print(f"the store at {display_url(settings.database_url)} is empty: loading the demo "
          "district")
    load_demo(settings, Path(DEMO_OUT))
    keys = KeyStore(settings)
    try:
        return keys.create("auditor", "500104")
    finally:
        keys.close()


def print_run_banner(settings: Settings, total: int | None, demo_key: str | None) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"\nstore {display_url(settings.database_url)}: {total} recorded facts")
    print(f"StudyLedger API at {base}  (docs: {base}/docs)")
    print(f"public board:  curl '{base}/v1/boards/dadukou-double-100/2021-2025?org=500104'")
    print(f"pages:         {base}/boards/dadukou-double-100/2021-2025?org=500104 (public), "
          f"{base}/login (archive, certificate, compliance with a key)")
    if demo_key:
        print(f"an auditor key for the demo district (shown once): {demo_key}")
        print(f"balance:       curl -H 'Authorization: Bearer {demo_key}' "
              f"'{base}/v1/learners/L000001/balance?period=2021-2025'")
    else:
        print("make a key:    studyledger keys create --role auditor --org 500104")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from infra.ops.startup import waits_out
    from infra.serve import serve

    overrides = {k: v for k, v in (("api_host", args.host), ("api_port", args.port),
                                   ("api_workers", args.workers)) if v is not None}
    for key, value in overrides.items():  # the workers read their settings from the env
        os.environ[f"STUDYLEDGER_{key.upper()}"] = str(value)
    settings = settings.model_copy(update=overrides)
    # Fail here, in one line, if the store refuses us. One that does not answer yet is
    # waited for behind the open port: every request meanwhile is answered 503.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        open_ledger(settings).close()
    except CommandError as exc:
        if not waits_out(exc):
            raise
    print(f"StudyLedger API at http://{settings.api_host}:{settings.api_port} "
          f"({settings.api_workers} worker(s), store {display_url(settings.database_url)})",
          flush=True)
    serve(settings, project=not args.no_project)
    return EXIT_OK


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from infra.store.keys import KeyStore, KeyStoreError

    keys = KeyStore(settings)
    try:
        if args.action == "create":
            ledger = open_ledger(settings)
            from domain.archive import OrgUnit

            if ledger.get_existing(OrgUnit, OrgUnit.id_for(args.org)) is None:
                # A new district starts over HTTP: its admin key registers the org itself.
                print(f"note: org {args.org} is not registered yet; this key's subtree is "
                      f"empty until it is (an admin key may register {args.org} itself, as "
                      "a root or under a registered parent)", file=sys.stderr)
            # the key alone on stdout
            print(keys.create(args.role, args.org, args.source, basic=args.basic))
        elif args.action == "revoke":
            keys.revoke(args.key_id)
            print(f"revoked key {args.key_id}", file=sys.stderr)
        else:
            for key in keys.list():
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(f"{key.key_id}  {key.role:<8}  org {key.org_id:<12}  "
                      f"source {key.source or '-':<14}  created {key.created_at}  {state}")
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        keys.close()
    return EXIT_OK
