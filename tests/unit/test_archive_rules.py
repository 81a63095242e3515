"""The archive's rules, in memory: given the facts an archive holds, when one more is recorded,
then the event it appends or the named error it refuses with (and then nothing changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.archive import LearnerArchive, OrgUnit, submission_key
from domain.batch_writer import check_not_future
from domain.chain import GENESIS_HASH, link_hash_of_text
from domain.errors import (
    AlreadyReviewedError,
    AlreadySubmittedError,
    AlreadyVoidedError,
    ApprovedHoursExceedDeclaredError,
    FutureFactError,
    LearnerAlreadyRegisteredError,
    NotSubmittedError,
    NotVoidableError,
    OrgAlreadyRegisteredError,
    PrerequisiteMissingError,
    VoidTargetUnknownError,
)
from domain.facts import IncomingFact
from tests.factories import REGISTRATION, SESSION, incoming

CHANNEL = "test"


# -- facts -------------------------------------------------------------------------------

def registration(org_id: str = "U1", at: str = "2021-01-04T09:00:00+08:00") -> IncomingFact:
    return incoming("learner.registered", REGISTRATION | {"org_id": org_id}, at=at)


def transfer(org_id: str, at: str) -> IncomingFact:
    return incoming("learner.transferred", {"org_id": org_id}, at=at)


def session() -> IncomingFact:
    return incoming("study_session.recorded", SESSION)


def submitted(assignment_id: str = "A1") -> IncomingFact:
    return incoming("assignment.submitted", {"assignment_id": assignment_id, "kind": "paper",
                                             "title": "心得"})


def reviewed(assignment_id: str = "A1", decision: str = "accepted") -> IncomingFact:
    return incoming("assignment.reviewed", {"assignment_id": assignment_id,
                                            "reviewer_id": "R1", "decision": decision,
                                            "score": 90})


def declared(declaration_id: str = "D1", hours: Any = 4) -> IncomingFact:
    return incoming("declaration.submitted", {"declaration_id": declaration_id,
                                              "activity": "theory_group_study",
                                              "hours": hours, "evidence": "签到表"})


def ruled(declaration_id: str = "D1", approved: Any = 4,
          decision: str = "approved") -> IncomingFact:
    return incoming("declaration.reviewed", {"declaration_id": declaration_id,
                                             "reviewer_id": "R1", "decision": decision,
                                             "approved_hours": approved})


def voided(target: IncomingFact | Any) -> IncomingFact:
    target_id = target.event_id if isinstance(target, IncomingFact) else target
    return incoming("record.voided", {"target_event_id": str(target_id), "reason": "代学代考"})


def org(org_id: str, parent: str | None = None) -> IncomingFact:
    return incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                       "parent_id": parent}, learner_id=None)


# -- given / when ------------------------------------------------------------------------

def given(*facts: IncomingFact, opened_by: IncomingFact | None = None) -> LearnerArchive:
    """An archive opened by a registration and holding `facts`, its events collected."""
    archive = LearnerArchive.register(opened_by or registration(), CHANNEL)
    for fact in facts:
        archive.record(fact, CHANNEL)
    archive.collect_events()
    return archive


def when(archive: LearnerArchive, fact: IncomingFact) -> Any:
    """Record `fact`; the one event it appended."""
    archive.record(fact, CHANNEL)
    [event] = archive.collect_events()
    return event


def refused(archive: LearnerArchive, fact: IncomingFact,
            error: type[Exception]) -> pytest.ExceptionInfo[Any]:
    """Recording `fact` raises exactly `error`, and the archive is left as it was."""
    version, last_hash, org_id = archive.version, archive.last_hash, archive.org_id
    with pytest.raises(error) as raised:
        archive.record(fact, CHANNEL)
    assert type(raised.value) is error
    assert (archive.version, archive.last_hash, archive.org_id) == (version, last_hash, org_id)
    assert archive.collect_events() == []
    assert not archive.knows(fact.event_id)
    return raised


# -- the event ---------------------------------------------------------------------------

def test_a_recorded_fact_becomes_one_event_carrying_its_canonical_form_and_channel():
    archive = given()
    fact = session()
    event = when(archive, fact)
    assert isinstance(event, LearnerArchive.FactRecorded)
    assert (event.event_id, event.fact, event.channel) == (fact.event_id, fact.canonical,
                                                           CHANNEL)
    assert archive.knows(fact.event_id)


def test_each_event_links_to_the_hash_of_the_one_before():
    first = registration()
    archive = LearnerArchive.register(first, CHANNEL)
    [opened] = archive.collect_events()
    fact = session()
    event = when(archive, fact)
    assert opened.prev_hash == GENESIS_HASH
    assert opened.hash == link_hash_of_text(GENESIS_HASH, first.canonical_text)
    assert event.prev_hash == opened.hash
    assert event.hash == link_hash_of_text(opened.hash, fact.canonical_text)
    assert archive.last_hash == event.hash


def test_registration_sets_who_the_learner_is():
    archive = LearnerArchive.register(registration("U7"), CHANNEL)
    assert (archive.learner_id, archive.name, archive.org_id, archive.rank) == (
        "L1", REGISTRATION["name"], "U7", REGISTRATION["rank"])
    assert archive.id == LearnerArchive.id_for("L1")


def test_a_second_registration_of_a_learner_is_refused():
    refused(given(), registration("U2"), LearnerAlreadyRegisteredError)


def test_a_second_registration_of_an_org_is_refused():
    unit = OrgUnit.register(org("U1"), CHANNEL)
    with pytest.raises(OrgAlreadyRegisteredError):
        unit.record(org("U1", parent="R"), CHANNEL)
    assert (unit.version, unit.parent_id) == (1, None)


def test_an_org_board_publication_is_recorded_on_the_unit():
    unit = OrgUnit.register(org("U1", parent="R"), CHANNEL)
    unit.record(incoming("org.board_published", {"org_id": "U1", "published": True},
                         learner_id=None), CHANNEL)
    assert (unit.parent_id, unit.board_published, unit.version) == ("R", True, 2)


# -- transfers ---------------------------------------------------------------------------

def test_a_transfer_moves_the_learner_to_its_org():
    archive = given()
    when(archive, transfer("U2", at="2022-01-01T00:00:00+08:00"))
    assert archive.org_id == "U2"


def test_a_transfer_dated_before_the_standing_one_is_recorded_but_does_not_move_the_learner():
    archive = given(transfer("U2", at="2023-01-01T00:00:00+08:00"))
    when(archive, transfer("U3", at="2022-06-01T00:00:00+08:00"))
    assert archive.org_id == "U2"


def test_of_two_transfers_at_the_same_moment_the_one_recorded_later_stands():
    archive = given(transfer("U2", at="2023-01-01T00:00:00+08:00"))
    when(archive, transfer("U3", at="2023-01-01T00:00:00+08:00"))
    assert archive.org_id == "U3"


def test_a_transfer_dated_before_the_registration_leaves_the_learner_in_its_first_org():
    # The archive compares with the registration's own date (see also the views' fold).
    archive = given()
    when(archive, transfer("U2", at="2020-06-01T00:00:00+08:00"))
    assert archive.org_id == "U1"


def test_a_transfer_cannot_be_voided():
    moved = transfer("U2", at="2022-01-01T00:00:00+08:00")
    raised = refused(given(moved), voided(moved), NotVoidableError)
    assert "learner.transferred" in raised.value.message


# -- assignments -------------------------------------------------------------------------

def test_a_review_before_its_submission_waits_for_the_submission():
    raised = refused(given(), reviewed("A1"), NotSubmittedError)
    assert isinstance(raised.value, PrerequisiteMissingError)  # parked, not refused
    assert raised.value.waits_for == submission_key("L1", "assignment", "A1")
    assert raised.value.field == "payload.assignment_id"


def test_a_review_of_a_submitted_assignment_is_recorded():
    archive = given(submitted("A1"))
    review = reviewed("A1")
    assert when(archive, review).event_id == review.event_id


def test_a_second_review_of_one_submission_is_refused():
    raised = refused(given(submitted("A1"), reviewed("A1")), reviewed("A1", "rejected"),
                     AlreadyReviewedError)
    assert "(accepted)" in raised.value.message


def test_a_review_of_another_assignment_is_not_a_second_review():
    archive = given(submitted("A1"), reviewed("A1"), submitted("A2"))
    when(archive, reviewed("A2"))


def test_a_submission_awaiting_review_cannot_be_submitted_again():
    raised = refused(given(submitted("A1")), submitted("A1"), AlreadySubmittedError)
    assert "awaiting review" in raised.value.message


def test_an_accepted_assignment_cannot_be_submitted_again():
    raised = refused(given(submitted("A1"), reviewed("A1")), submitted("A1"),
                     AlreadySubmittedError)
    assert "(accepted)" in raised.value.message


def test_a_rejected_assignment_may_be_submitted_again_and_reviewed_again():
    archive = given(submitted("A1"), reviewed("A1", "rejected"))
    when(archive, submitted("A1"))
    when(archive, reviewed("A1"))


def test_a_voided_review_frees_the_assignment_for_a_new_review():
    review = reviewed("A1")
    archive = given(submitted("A1"), review, voided(review))
    when(archive, reviewed("A1", "rejected"))


def test_a_voided_review_leaves_the_assignment_awaiting_review_not_open_to_resubmission():
    review = reviewed("A1")
    refused(given(submitted("A1"), review, voided(review)), submitted("A1"),
            AlreadySubmittedError)


def test_a_voided_submission_withdraws_the_work_so_a_review_waits_again():
    submission = submitted("A1")
    refused(given(submission, voided(submission)), reviewed("A1"), NotSubmittedError)


def test_a_voided_submission_may_be_submitted_anew():
    submission = submitted("A1")
    archive = given(submission, reviewed("A1"), voided(submission))
    when(archive, submitted("A1"))
    when(archive, reviewed("A1"))


def test_voiding_an_earlier_rejected_submission_leaves_its_resubmission_standing():
    first = submitted("A1")
    archive = given(first, reviewed("A1", "rejected"), submitted("A1"), voided(first))
    when(archive, reviewed("A1"))  # the resubmission is still there to review


# -- declarations ------------------------------------------------------------------------

def test_a_declaration_review_before_its_submission_waits_for_the_submission():
    raised = refused(given(), ruled("D1"), NotSubmittedError)
    assert raised.value.waits_for == submission_key("L1", "declaration", "D1")
    assert raised.value.field == "payload.declaration_id"


def test_approving_more_hours_than_declared_is_refused():
    raised = refused(given(declared("D1", hours="4")), ruled("D1", approved="4.01"),
                     ApprovedHoursExceedDeclaredError)
    assert raised.value.field == "payload.approved_hours"


def test_approving_exactly_the_hours_declared_is_recorded():
    archive = given(declared("D1", hours="4.5"))
    when(archive, ruled("D1", approved="4.50"))


def test_a_second_ruling_on_one_declaration_is_refused():
    refused(given(declared("D1"), ruled("D1", approved=2)), ruled("D1", approved=1),
            AlreadyReviewedError)


def test_a_second_ruling_is_refused_as_already_reviewed_before_its_hours_are_looked_at():
    refused(given(declared("D1", hours=4), ruled("D1")), ruled("D1", approved=5),
            AlreadyReviewedError)


def test_a_declaration_cannot_be_submitted_twice():
    refused(given(declared("D1")), declared("D1"), AlreadySubmittedError)


def test_a_rejected_declaration_cannot_be_submitted_again_unlike_an_assignment():
    refused(given(declared("D1"), ruled("D1", approved=0, decision="rejected")),
            declared("D1"), AlreadySubmittedError)


def test_a_voided_ruling_frees_the_declaration_for_a_new_ruling():
    ruling = ruled("D1", approved=1)
    archive = given(declared("D1"), ruling, voided(ruling))
    when(archive, ruled("D1", approved=4))


def test_a_voided_declaration_may_be_declared_anew_with_other_hours():
    declaration = declared("D1", hours=2)
    archive = given(declaration, voided(declaration), declared("D1", hours=8))
    when(archive, ruled("D1", approved=8))


# -- voids -------------------------------------------------------------------------------

def test_a_void_of_a_fact_of_the_archive_is_recorded():
    target = session()
    archive = given(target)
    void = voided(target)
    assert when(archive, void).fact["payload"]["target_event_id"] == str(target.event_id)


def test_a_void_of_an_unknown_fact_waits_for_that_fact():
    stranger = session()  # never recorded here
    raised = refused(given(), voided(stranger), VoidTargetUnknownError)
    assert raised.value.waits_for == f"event:{stranger.event_id}"
    assert raised.value.field == "payload.target_event_id"


def test_a_second_void_of_one_fact_is_refused():
    target = session()
    refused(given(target, voided(target)), voided(target), AlreadyVoidedError)


def test_a_void_cannot_itself_be_voided():
    target = session()
    first_void = voided(target)
    refused(given(target, first_void), voided(first_void), NotVoidableError)


def test_the_registration_cannot_be_voided():
    first = registration()
    refused(given(opened_by=first), voided(first), NotVoidableError)


# -- the clock (the batch writer's rule, a pure function) --------------------------------

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(moment: datetime) -> IncomingFact:
    return incoming("study_session.recorded", SESSION, at=moment.isoformat())


def test_a_fact_up_to_five_minutes_ahead_of_the_server_clock_is_accepted():
    check_not_future(at(NOW + timedelta(minutes=5)), NOW)


def test_a_fact_more_than_five_minutes_ahead_of_the_server_clock_is_refused():
    with pytest.raises(FutureFactError):
        check_not_future(at(NOW + timedelta(minutes=5, seconds=1)), NOW)


def test_appended_facts_reach_the_library_as_events_that_rebuild_the_archive() -> None:
    """Facts appended wait as plain values; a path that needs the library's event objects
    (a store that enciphers, compresses or snapshots) gets them from collect_events, in
    version order, and they rebuild the same archive."""
    archive = LearnerArchive.register(incoming("learner.registered", REGISTRATION), CHANNEL)
    sessions = [incoming("study_session.recorded", {**SESSION, "course_id": f"C{n}"})
                for n in range(2)]
    for fact in sessions:
        archive.record(fact, CHANNEL)
    events = archive.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "FactRecorded", "FactRecorded"]
    assert [e.originator_version for e in events] == [1, 2, 3]
    assert events[2].prev_hash == events[1].hash == link_hash_of_text(
        events[0].hash, sessions[0].canonical_text)
    assert [e.fact for e in events[1:]] == [f.canonical for f in sessions]
    assert archive.collect_events() == []  # collected once
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    assert (rebuilt.version, rebuilt.last_hash, rebuilt.modified_on) == (
        archive.version, archive.last_hash, archive.modified_on)
    assert rebuilt.knows(sessions[1].event_id)
