"""The delivery REST API (thin routes over deliveries.py); the /v1 routes come next.

Operations routes (/healthz, /readyz, /metrics) come from the app factory.
"""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["delivery"])
