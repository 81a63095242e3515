"""Named domain errors. Each carries a stable code and the envelope field it concerns."""

from __future__ import annotations


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


class NotSubmittedError(FactRejectedError):
    code = "not_submitted"


class AlreadySubmittedError(FactRejectedError):
    code = "already_submitted"


class AlreadyReviewedError(FactRejectedError):
    code = "already_reviewed"


class ApprovedHoursExceedDeclaredError(FactRejectedError):
    code = "approved_hours_exceed_declared"
    field = "payload.approved_hours"


class VoidTargetUnknownError(FactRejectedError):
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


class ChainBrokenError(StudyLedgerError):
    code = "chain_broken"


class OutOfScopeError(FactRejectedError):
    """The writer's key covers an org subtree that this fact's learner or org is outside."""

    code = "out_of_scope"


class InvalidCursorError(StudyLedgerError):
    """A page cursor that this listing did not hand out."""

    code = "invalid_cursor"
    field = "cursor"
