"""The generic format: qunyun's own signed webhook, for platforms without an adapter."""
