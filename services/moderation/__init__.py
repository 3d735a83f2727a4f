"""Moderation: each group's rules applied to its events, with strikes, cases and actions."""
