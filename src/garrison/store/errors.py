"""Errors raised by the mail store. Each message is fit to show to a client."""


class StoreError(Exception):
    """A store operation failed for a reason the client can be told."""


class MailboxNotFound(StoreError):
    """The named mailbox does not exist."""


class MailboxExists(StoreError):
    """A mailbox with that name already exists."""


class QuotaExceeded(StoreError):
    """The change would put the account over its storage quota."""
