"""Metrics: exact activity, retention and lifecycle counters in Redis from the event stream."""
