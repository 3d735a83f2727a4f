"""Run the metrics service: `python -m services.metrics` (PORT defaults to 8002)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.metrics.app:create_app", 8002)
