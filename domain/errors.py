"""Named domain errors. Each carries a stable code and the envelope field it concerns."""

from __future__ import annotations

from eventsourcing.persistence import PersistenceError


class StudyLedgerError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "invalid_fact"
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class FactRejectedError(StudyLedgerError):
    """A fact breaks a domain rule; it is not recorded."""


class FactConflictError(StudyLedgerError):
    code = "conflict"
    field = "external_id"


class LearnerNotRegisteredError(FactRejectedError):
    code = "learner_not_registered"
    field = "learner_id"


class LearnerAlreadyRegisteredError(FactRejectedError):
    code = "learner_already_registered"
    field = "learner_id"


class OrgNotRegisteredError(FactRejectedError):
    code = "org_not_registered"
    field = "payload.org_id"


class OrgAlreadyRegisteredError(FactRejectedError):
    code = "org_already_registered"
    field = "payload.org_id"


class PrerequisiteMissingError(FactRejectedError):
    """A fact needs another fact that is not recorded yet (its learner, org, parent org,
    submission or void target). Such a fact is parked, not refused: it is recorded as soon
    as what it waits for arrives. `waits_for` names that fact as a key ("learner:L1",
    "org:500104", "assignment:L1:A7", "declaration:L1:D2", "event:<uuid>"); `missing` says
    it in words."""

    code = "prerequisite_missing"
    KEPT = "; the fact is kept and recorded as soon as it arrives"

    def __init__(self, message: str, *, waits_for: str, missing: str,
                 field: str | None = None) -> None:
        if not message.endswith(self.KEPT):
            message += self.KEPT
        super().__init__(message, field=field)
        self.waits_for = waits_for
        self.missing = missing


def learner_missing(learner_id: str) -> PrerequisiteMissingError:
    return PrerequisiteMissingError(
        f"learner {learner_id} is not registered yet", waits_for=f"learner:{learner_id}",
        missing=f"learner {learner_id}", field="learner_id")


def org_missing(org_id: str, field: str = "payload.org_id") -> PrerequisiteMissingError:
    what = "parent org" if field.endswith("parent_id") else "org"
    return PrerequisiteMissingError(
        f"{what} {org_id} is not registered yet", waits_for=f"org:{org_id}",
        missing=f"org {org_id}", field=field)


class NotSubmittedError(PrerequisiteMissingError):
    """A review of an assignment or declaration that is not (yet) submitted."""


class AlreadySubmittedError(FactRejectedError):
    code = "already_submitted"


class AlreadyReviewedError(FactRejectedError):
    code = "already_reviewed"


class ApprovedHoursExceedDeclaredError(FactRejectedError):
    code = "approved_hours_exceed_declared"
    field = "payload.approved_hours"


class VoidTargetUnknownError(PrerequisiteMissingError):
    """A void of a fact this archive does not hold (yet)."""

    field = "payload.target_event_id"


class VoidTargetElsewhereError(FactRejectedError):
    code = "void_target_unknown"
    field = "payload.target_event_id"


class AlreadyVoidedError(FactRejectedError):
    code = "already_voided"
    field = "payload.target_event_id"


class NotVoidableError(FactRejectedError):
    code = "not_voidable"
    field = "payload.target_event_id"


class FutureFactError(FactRejectedError):
    code = "occurred_in_future"
    field = "occurred_at"


class UnknownCategoryError(FactRejectedError):
    code = "unknown_category"
    field = "payload.category"


class PolicyError(StudyLedgerError):
    """A policy pack is malformed, unknown, or asked for a period it does not have."""

    code = "policy_error"


class OutOfScopeError(FactRejectedError):
    """The writer's key covers an org subtree that this fact's learner or org is outside."""

    code = "out_of_scope"


class InvalidCursorError(StudyLedgerError):
    """A page cursor that this listing did not hand out."""

    code = "invalid_cursor"
    field = "cursor"


class InvalidMomentError(StudyLedgerError):
    """A point in time a reader asked about that is not one."""

    code = "invalid_time"


class StoreUnavailableError(PersistenceError):
    """The store did not answer in time: down, restarting, unreachable or locked. Not a
    verdict on the request: it may be sent again later (a write that did get stored then
    answers duplicate).

    A PersistenceError, so code that handles the library's failures handles this one; but
    not its OperationalError, which the library's recorders retry ten times per call: with a
    store that is down, that held each request for tens of seconds."""

    code = "store_unavailable"


def one_line(exc: BaseException) -> str:
    """An error's text on one line (driver messages span several), or its type's name."""
    return " ".join(str(exc).split()) or type(exc).__name__
