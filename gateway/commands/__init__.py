"""Operator commands beside `serve`: events, dlq, replay, reconcile, oc, settings."""
