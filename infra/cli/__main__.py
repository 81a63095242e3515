"""`python -m infra.cli`: the same as the `studyledger` script."""

from infra.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
