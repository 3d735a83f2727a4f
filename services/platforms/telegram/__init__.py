"""Telegram: its webhook adapter (`inbound`), its client (`outbound`), its ids (`ids`)."""
