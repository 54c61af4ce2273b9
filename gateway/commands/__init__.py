"""Operator commands beside `serve`: events, dlq, replay, settings (one module each)."""
