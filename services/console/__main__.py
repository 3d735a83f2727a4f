"""Run the console: `python -m services.console` (PORT defaults to 8006)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.console.app:create_app", 8006)
