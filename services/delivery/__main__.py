"""Run the delivery service: `python -m services.delivery` (PORT defaults to 8005)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.delivery.app:create_app", 8005)
