"""Domain exceptions raised by services; the API and views turn them into clear messages."""


class DomainError(Exception):
    """A request that the domain rules refuse; the message is shown to the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    status_code = 400


class StateConflict(DomainError):
    """The object is not in a state that allows the action (e.g. a lease held by another)."""

    status_code = 409


class NotAllowed(DomainError):
    status_code = 403


def full_clean_or_fail(instance: object) -> None:
    """Run a model instance's field validators; their messages become one ValidationFailed."""
    from django.core.exceptions import ValidationError

    try:
        instance.full_clean()  # type: ignore[attr-defined]
    except ValidationError as exc:
        messages = [f"{field}: {'; '.join(errs)}" for field, errs in exc.message_dict.items()]
        raise ValidationFailed(" ".join(messages)) from exc
