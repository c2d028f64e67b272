"""The routes: includes the routers, nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from crucible_gateway.api import (
    agent_runs,
    chat,
    health,
    mcp_server,
    problem_spec,
    projects,
    runs,
    snapshots,
    specs,
    sprints,
    usage,
    world_model,
)
from crucible_gateway.api.deps import require_token

api_router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
api_router.include_router(projects.router)
api_router.include_router(chat.router)
api_router.include_router(problem_spec.router)
api_router.include_router(world_model.router)
api_router.include_router(agent_runs.router)
api_router.include_router(usage.router)
api_router.include_router(specs.router)
api_router.include_router(sprints.router)
api_router.include_router(runs.router)
api_router.include_router(snapshots.router)

router = APIRouter()
router.include_router(health.router)
router.include_router(api_router)
# Outside /api's bearer dependency: a WebSocket checks its token itself (header or ?token=).
router.include_router(sprints.ws_router)
router.include_router(runs.ws_router)
router.include_router(chat.ws_router)
router.include_router(snapshots.ws_router)
# Streamable HTTP at /mcp: outside /api, it checks the same bearer token itself.
router.include_router(mcp_server.router)
