"""Typed errors of the domain. Each one carries a sentence a person can act on."""

from __future__ import annotations


class SignoffError(Exception):
    """Base of every refusal signoff explains to a person.

    `code` is a stable machine name (used in timeline events and API answers);
    the message is the human sentence, saying why and what would work.
    """

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(SignoffError):
    code = "unparsable"


class PolicyViolation(SignoffError):
    code = "policy"


class QuorumUnreachable(PolicyViolation):
    """The roster has fewer people who may sign than the quorum needs: the request could only expire."""

    code = "quorum_unreachable"


class ChangeFreeze(PolicyViolation):
    """A change freeze is in force: `effect = "refuse"`, or a `raise` that would go above critical."""

    code = "change_freeze"


class Unverifiable(SignoffError):
    """An operation whose effect could never be seen (e.g. a restart that replaces no pod): refused when asked."""

    code = "unverifiable"


class NotFound(SignoffError):
    code = "not_found"


class Refusal(SignoffError):
    """A person's action on a request that the rules do not allow."""

    code = "refused"

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class SelfApprovalForbidden(Refusal):
    code = "self_approval"


class NotAuthorized(Refusal):
    code = "not_authorized"


class AlreadySigned(Refusal):
    code = "already_signed"


class NotPending(Refusal):
    code = "not_pending"


class RequestExpired(Refusal):
    code = "expired"


class UnknownPerson(Refusal):
    code = "unknown_person"


class ConcurrentUpdate(SignoffError):
    """Somebody else changed the row first; the caller reloads and tries again."""

    code = "conflict"


class RateLimited(SignoffError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfirmationNeeded(SignoffError):
    """A `confirm = true` risk level: the signature needs the target's name typed. Not a refusal of the
    person (nothing is recorded): the chat adapters answer it with a form that asks for the name."""

    code = "confirmation_needed"

    def __init__(self, message: str, request_id: str, expected: str) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.expected = expected


class ConfirmationMismatch(Refusal):
    """The typed name is not the target's: the signature does not count (the refusal is recorded)."""

    code = "confirmation_mismatch"
