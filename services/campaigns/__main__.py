"""Run the campaigns service: `python -m services.campaigns` (PORT defaults to 8004)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.campaigns.app:create_app", 8004)
