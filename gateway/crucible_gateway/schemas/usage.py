"""Bodies of /api/usage and /api/llm-calls: what the models cost, by correlation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.protobuf import to_datetime
from crucible_gateway.schemas.agent_runs import CorrelationRead
from crucible_gateway.schemas.common import RestEnum

CALL_STATUS = RestEnum(pb.LlmCallStatus)
USAGE_DIMENSION = RestEnum(pb.UsageDimension)
GroupBy = Annotated[
    Sequence[Annotated[str, USAGE_DIMENSION]],
    Query(description="Also report the usage of each project or run (repeat the parameter for both)"),
]
GroupLimit = Annotated[
    int, Query(ge=0, le=1000, description="At most this many groups each, the most expensive first (0: 50)")
]


class UsageRead(BaseModel):
    input_tokens: int
    output_tokens: int
    usd: float = Field(description="Sum over priced calls; see unpriced_calls")
    calls: int
    unpriced_calls: int
    failed_calls: int
    replayed_calls: int
    cancelled_calls: int = Field(
        description="Abandoned by their caller mid-answer: maybe billed, at a cost not in the sums"
    )

    @classmethod
    def from_proto(cls, u: pb.Usage) -> UsageRead:
        return cls(
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            usd=round(u.usd, 8),
            calls=u.calls,
            unpriced_calls=u.unpriced_calls,
            failed_calls=u.failed_calls,
            replayed_calls=u.replayed_calls,
            cancelled_calls=u.cancelled_calls,
        )


class ModelUsageRead(BaseModel):
    provider: str
    model_name: str
    priced: bool
    usage: UsageRead


class KeyedUsageRead(BaseModel):
    id: str = Field(description="The project's or run's id; empty for the calls made outside any")
    priced: bool = Field(
        description="False when a call's cost is unknown (no price, no usage): its usd is a lower bound"
    )
    usage: UsageRead

    @classmethod
    def from_proto(cls, k: pb.KeyedUsage) -> KeyedUsageRead:
        return cls(id=k.key, priced=k.usage.unpriced_calls == 0, usage=UsageRead.from_proto(k.usage))


class UsageReport(BaseModel):
    total: UsageRead
    by_model: list[ModelUsageRead]
    by_project: list[KeyedUsageRead] | None = Field(description="With group_by=project, the most expensive first")
    by_run: list[KeyedUsageRead] | None = Field(description="With group_by=run, the most expensive first")
    truncated: list[str] = Field(description="The groupings cut at group_limit (project, run): more groups exist")
    calls_in_flight: int = Field(
        description="With run_id: the run's calls still being made, whose cost is not in these totals yet"
    )

    @classmethod
    def from_proto(cls, r: pb.GetUsageResponse) -> UsageReport:
        groups = {USAGE_DIMENSION.name(g.dimension): g for g in r.groups}
        keyed = {name: [KeyedUsageRead.from_proto(k) for k in g.groups] for name, g in groups.items()}
        return cls(
            total=UsageRead.from_proto(r.total),
            by_model=[
                ModelUsageRead(
                    provider=m.provider, model_name=m.model_name, priced=m.priced, usage=UsageRead.from_proto(m.usage)
                )
                for m in r.by_model
            ],
            by_project=keyed.get("project"),
            by_run=keyed.get("run"),
            truncated=[name for name, g in groups.items() if g.truncated],
            calls_in_flight=r.calls_in_flight,
        )


class LlmCallRead(BaseModel):
    id: str
    provider: str
    model_name: str
    response_model: str
    status: str = Field(description=f"{', '.join(CALL_STATUS.names)}, or unspecified")
    input_tokens: int
    output_tokens: int
    usd: float | None
    latency_ms: int
    attempt: int
    error: str
    correlation: CorrelationRead
    agent_run_id: str
    created_at: datetime

    @classmethod
    def from_proto(cls, c: pb.LlmCall) -> LlmCallRead:
        return cls(
            id=c.id,
            provider=c.provider,
            model_name=c.model_name,
            response_model=c.response_model,
            status=CALL_STATUS.optional(c.status) or "unspecified",
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            usd=c.usd if c.has_usd else None,
            latency_ms=c.latency_ms,
            attempt=c.attempt,
            error=c.error,
            correlation=CorrelationRead.from_proto(c.correlation),
            agent_run_id=c.correlation.agent_run_id,
            created_at=to_datetime(c.create_time),
        )


class LlmCallDetail(LlmCallRead):
    response_text: str = Field(
        description="The answer as the model wrote it (an invalid one too), whole: an evaluation keeps "
        "4,000 characters of it, an error 500"
    )

    @classmethod
    def from_proto(cls, c: pb.LlmCall) -> LlmCallDetail:
        return cls(**LlmCallRead.from_proto(c).model_dump(), response_text=c.response_text)


class LlmCallList(BaseModel):
    llm_calls: list[LlmCallRead]
    next_page_token: str
