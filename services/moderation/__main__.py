"""Run the moderation service: `python -m services.moderation` (PORT defaults to 8003)."""

from services.common.app import serve

if __name__ == "__main__":
    serve("services.moderation.app:create_app", 8003)
