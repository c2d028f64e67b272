"""GET /healthz: 200 only when every service answers SERVING."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.health import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(clients: Clients) -> JSONResponse:
    services = await clients.health()
    not_serving = sorted(name for name, status in services.items() if status != "SERVING")
    body = Health(status="degraded" if not_serving else "ok", services=services, not_serving=not_serving)
    return JSONResponse(body.model_dump(), status_code=503 if not_serving else 200)
