"""Run the ingest service: `python -m services.ingest` (PORT defaults to 8001)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.ingest.app:create_app", 8001)
