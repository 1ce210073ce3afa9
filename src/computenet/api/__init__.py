"""The REST API (FastAPI): one router per resource, shared auth dependency."""
