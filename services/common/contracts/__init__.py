"""The topics' record formats: what goes on Kafka, typed, in one place.

`events` is community.events.v1 (ingest → every consumer); the outbound modules are
what moderation, campaigns and delivery publish.
"""
