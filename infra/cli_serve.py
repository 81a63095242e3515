"""`studyledger run`, `serve` and `keys`: the HTTP side of the command line."""

from __future__ import annotations

import argparse
import os
import sys

from infra.cli_common import EXIT_OK, CommandError, open_ledger
from infra.settings import Settings, display_url


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: load the demo district into an empty store, bring the views up to date,
    then serve the HTTP API (with the projections running) until Ctrl-C."""
    from infra.bootstrap import build_projector
    from infra.key_store import KeyStore

    ledger = open_ledger(settings)
    demo_key = None
    if not ledger.recorder.max_notification_id():
        print(f"the store at {display_url(settings.database_url)} is empty: loading the demo "
              "district")
        args.out, args.seed, args.learners, args.no_ingest = "var/demo.jsonl", 20210104, 500, False
        from infra.cli import cmd_demo  # the demo loader lives with the other file commands

        cmd_demo(args, settings)
        keys = KeyStore(settings)
        demo_key = keys.create("auditor", "500104")
        keys.close()
    projector = build_projector(settings, ledger)
    print(f"bringing the read views up to date ({projector.lag()} facts behind)", flush=True)
    projector.run_once()
    projector.views.close()
    total = ledger.recorder.max_notification_id()
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
    from infra.serve import serve

    serve(settings)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from infra.serve import serve

    overrides = {k: v for k, v in (("api_host", args.host), ("api_port", args.port),
                                   ("api_workers", args.workers)) if v is not None}
    for key, value in overrides.items():  # the workers read their settings from the env
        os.environ[f"STUDYLEDGER_{key.upper()}"] = str(value)
    settings = settings.model_copy(update=overrides)
    open_ledger(settings)  # fail here, in one line, if the store cannot be opened
    print(f"StudyLedger API at http://{settings.api_host}:{settings.api_port} "
          f"({settings.api_workers} worker(s), store {display_url(settings.database_url)})",
          flush=True)
    serve(settings, project=not args.no_project)
    return EXIT_OK


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from infra.key_store import KeyStore, KeyStoreError

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
            print(keys.create(args.role, args.org, args.source))  # the key alone on stdout
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
