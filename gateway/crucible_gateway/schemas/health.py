"""Body of /healthz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, str]
    not_serving: list[str]
