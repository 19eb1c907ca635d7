"""Inbound delivery: analyse, filter and store accepted messages."""

from garrison.delivery.pipeline import (
    DeliveryError,
    DeliveryPipeline,
    Envelope,
    Recipient,
)

__all__ = ["DeliveryError", "DeliveryPipeline", "Envelope", "Recipient"]
