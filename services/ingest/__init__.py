"""Ingest: platform webhooks verified, normalised and put on community.events.v1."""
