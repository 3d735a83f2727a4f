"""OneBot v11: the outbound client; the inbound adapter moves here from ingest later."""
