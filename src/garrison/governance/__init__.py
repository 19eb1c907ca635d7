"""Mail governance: messages kept aside for an administrator to decide on."""

from garrison.governance.quarantine import (
    Quarantine,
    QuarantinedMessage,
    QuarantinedRecipient,
    QuarantineNotFound,
    ReleaseResult,
)

__all__ = [
    "Quarantine",
    "QuarantineNotFound",
    "QuarantinedMessage",
    "QuarantinedRecipient",
    "ReleaseResult",
]
