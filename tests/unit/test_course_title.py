"""An optional course title on study sessions, shown on certificates, without changing the
content of any fact sent without one."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.credits.lines import RecordedFact
from projections.certificate import _item
from tests.factories import SESSION, incoming

# The digest of this fact as computed before course titles existed.
PINNED_DIGEST = "b917b29e1fcad2157a65b0cd1895819cf02afc5c6ab53ca6bcb64e8810eec38c"


def session(**extra):
    return incoming("study_session.recorded", SESSION | extra, external_id="pin-1",
                    at="2024-05-01T10:00:00+08:00")


def test_a_session_without_a_title_keeps_the_digest_it_always_had():
    fact = session()
    assert "course_title" not in fact.canonical["payload"]
    assert fact.digest == PINNED_DIGEST


def test_a_title_is_content_and_is_kept():
    fact = session(course_title="习近平新时代中国特色社会主义思想概论")
    assert fact.canonical["payload"]["course_title"] == "习近平新时代中国特色社会主义思想概论"
    assert fact.digest != PINNED_DIGEST


def test_a_title_must_be_text_a_person_can_read():
    with pytest.raises(ValidationError, match="course_title"):
        session(course_title="bad\u0000title")


def test_the_certificate_shows_the_title_when_sent_else_the_course_id():
    zone = ZoneInfo("Asia/Shanghai")
    titled = session(course_title="党章学习")
    plain = session()
    assert _item(RecordedFact(titled.event_id, titled.canonical), Decimal(2), zone).title == (
        "党章学习")
    assert _item(RecordedFact(plain.event_id, plain.canonical), Decimal(2), zone).title == "C1"
