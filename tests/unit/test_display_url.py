"""The one rendering of a database URL for output: the password never shows."""

from __future__ import annotations

from infra.settings import display_url


def test_the_display_url_masks_the_password_and_nothing_else():
    assert display_url("postgresql://u:p%40ss@db:5433/ledger?sslmode=require") == (
        "postgresql://u:***@db:5433/ledger?sslmode=require")
    assert display_url("postgresql://u:p@ss@db/ledger") == "postgresql://u:***@db/ledger"
    assert display_url("postgresql://db/ledger?password=x&sslmode=require") == (
        "postgresql://db/ledger?password=***&sslmode=require")
    for shown_as_is in ("postgresql://u@db:5432/ledger", "sqlite:///./var/studyledger.db",
                        "sqlite:////tmp/x.db"):
        assert display_url(shown_as_is) == shown_as_is
