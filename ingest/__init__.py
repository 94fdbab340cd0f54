"""The Segment-spec HTTP API for the start-up's own product data (issue 16).

`create_router(settings, engine)` gives the `/v1/identify`, `/v1/track` and `/v1/batch` routes
to mount into the dashboard's web server; `create_app` serves them alone.
"""

from __future__ import annotations

from ingest.api import create_app, create_router, key_id
from ingest.limits import KeyRateLimiter

__all__ = ["KeyRateLimiter", "create_app", "create_router", "key_id"]
