"""The Modal deployment of Shuttle Jaguar: `modal deploy deploy/app.py` (see docs/deploy.md)."""
