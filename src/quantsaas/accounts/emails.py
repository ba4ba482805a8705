"""Email addresses: validated by `email-validator` (RFC 5321/5322 syntax, IDNA domains, no
control, bidi or zero-width characters), then normalised to one spelling per mailbox.

The spelling stored and looked up is email-validator's normalised form, lower-cased (as before:
`Alice@Example.com` and `alice@example.com` are one account), with the domain in Unicode, so
`user@bücher.de` and `user@xn--bcher-kva.de` are one account too. Deliverability (DNS) is not
checked: signup must work offline and fast. `admin@localhost`, the first-start administrator,
is the one address on a special-use domain that is accepted.

Accounts created before this validation may hold addresses it refuses (`a@b`); `lookup_email`
still finds those (the old strip-and-lower form) as long as they hold no control characters.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from quantsaas.errors import InvalidEmail
from quantsaas.logs import printable

MAX_LENGTH = 254
LOCAL_DOMAIN = "localhost"
"""The domain of the first-start administrator (`admin@localhost`): never a mail domain."""


def normalise_email(email: str) -> str:
    """The canonical spelling of `email`; InvalidEmail (quoting at most 80 characters, escaped)
    when it is not a valid address."""
    text = email.strip()
    if len(text) > MAX_LENGTH:
        raise InvalidEmail(f"an email address has at most {MAX_LENGTH} characters")
    local, _, domain = text.rpartition("@")
    stand_in = domain.lower() == LOCAL_DOMAIN
    try:
        result = validate_email(
            f"{local}@localhost.test" if stand_in else text,
            check_deliverability=False,
            test_environment=stand_in,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(f"not an email address: '{printable(text[:80])}': {exc}") from None
    normalised = result.normalized.lower()
    if stand_in:
        normalised = f"{normalised.rpartition('@')[0]}@{LOCAL_DOMAIN}"
    return normalised


def lookup_email(email: str) -> str:
    """The spelling to look an account up by: the canonical one, or for an address the
    validation refuses (an account older than it) the old stripped, lower-cased form; raises
    InvalidEmail for text holding control characters."""
    try:
        return normalise_email(email)
    except InvalidEmail:
        text = email.strip().lower()
        if not text or len(text) > MAX_LENGTH or printable(text) != text or "@" not in text:
            raise
        return text
