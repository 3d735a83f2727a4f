"""Delivery: carries out moderation actions and campaign posts on the platforms (port 8005)."""
