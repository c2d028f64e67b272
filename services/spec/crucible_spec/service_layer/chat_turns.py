"""A turn with the Architect: the user's message, the model's answer, the changes, the reply.

1. The user's message is stored first (idempotently, by its id), so nothing the user wrote is
   lost whatever happens next.
2. The Architect is asked with the ProblemSpec, the WorldModel, the session's recent messages
   and, in an analysis session, the project's latest runs; its reply streams out as it is written.
   Its call carries an idempotency key derived from the user's message, so a turn sent again
   after a crash is answered from the stored call and not paid twice.
3. Its patches are merged into the stored ProblemSpec and WorldModel and applied through the
   same code as manual edits (validated, versioned, a provenance entry with actor ARCHITECT and
   the user's message), in one transaction; a patch that does not validate is left out whole and
   said so in the reply's metadata.
4. A wish to run is put to the run service's preflight (the Run Config panel's check) and
   becomes the ``recommended_run_config``; the reply ends with the contract in the service's own
   words. Nothing here can create or execute a run: ``RunAdvisor`` has no such method.
5. The reply is stored as an agent message whose id derives from the user's message, so it is
   stored once. A model failure stops the turn before step 3: the user's message stays, nothing
   else changes, and the error says the turn may be sent again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from opentelemetry import trace

from crucible_common.errors import CrucibleError, ValidationFailed
from crucible_spec.domain.architect import (
    ArchitectIntent,
    Preflight,
    Recommendation,
    RecommendationSource,
    RunWish,
    TraceContext,
    contract_text,
    merge_spec,
    merge_world,
    recommend,
)
from crucible_spec.domain.errors import ChatMessageIdTaken, ChatSessionNotFound
from crucible_spec.domain.model import (
    Actor,
    ActorKind,
    ChatMessage,
    ChatSessionMode,
    JsonObject,
    MessageRole,
)
from crucible_spec.domain.validation import MAX_REASON, Violations, parse_id
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from crucible_spec.service_layer.architect import (
    ArchitectAnswer,
    ArchitectModel,
    ArchitectRequest,
    ConversationLine,
    ReplyDeltaSink,
    RunAdvisor,
    RunDigest,
)
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork

U = TypeVar("U", c.UpdateProblemSpec, c.UpdateWorldModel)

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# A turn's message is a chat message, but the prompt it becomes is paid for: keep it bounded.
MAX_TURN_CONTENT = 20_000
# Recent messages the Architect sees, and runs an analysis session tells it about.
HISTORY_MESSAGES = 20
ANALYSIS_RUNS = 5
# The reply's id derives from the user's message: one reply per turn, however often it is sent.
_REPLY_NAMESPACE = uuid.UUID("6d1f3c52-93a4-4b8e-9f0e-2a7c55b1d0c4")


@dataclass(frozen=True)
class TurnDeps:
    uow: Callable[[], AbstractUnitOfWork]
    read_uow: Callable[[], AbstractUnitOfWork]
    architect: ArchitectModel
    runs: RunAdvisor


@dataclass(frozen=True)
class ChatTurn:
    user_message: ChatMessage
    agent_message: ChatMessage


async def _ignore_message(message: ChatMessage) -> None:
    return None


async def _ignore_delta(text: str, restart: bool) -> None:
    return None


async def chat_turn(
    cmd: c.CreateChatTurn,
    deps: TurnDeps,
    *,
    on_user_message: Callable[[ChatMessage], Awaitable[None]] = _ignore_message,
    on_delta: ReplyDeltaSink = _ignore_delta,
) -> ChatTurn:
    session_id = parse_id(cmd.chat_session_id, "chat_session_id")
    v = Violations()
    v.text("content", cmd.content, max_len=MAX_TURN_CONTENT, required=True)
    v.raise_if_any()
    message_id = parse_id(cmd.chat_message_id, "chat_message_id") if cmd.chat_message_id else str(uuid.uuid4())
    user = await h.create_chat_message(
        c.CreateChatMessage(session_id, MessageRole.USER, cmd.content, {}, chat_message_id=message_id), deps.uow()
    )
    if user.role is not MessageRole.USER or user.content != cmd.content:
        # The id names another message of this session: a different turn, not this one again.
        raise ChatMessageIdTaken(message_id, "this session that is not this turn (another turn, or a reply)")
    await on_user_message(user)
    reply_id = str(uuid.uuid5(_REPLY_NAMESPACE, user.id))
    async with deps.read_uow() as uow:
        answered = await uow.repo.get_chat_message(reply_id)
    if answered is not None:
        await on_delta(answered.content, False)
        return ChatTurn(user, answered)

    with tracer.start_as_current_span(
        "architect.turn", attributes={"crucible.chat_session_id": session_id, "crucible.chat_message_id": user.id}
    ) as span:
        request = await _request(user, deps)
        span.set_attribute("crucible.project_id", request.project_id)
        try:
            answer = await deps.architect.answer(request, on_delta)
        except CrucibleError as exc:
            # The user's message is stored; say so, so the client can send the same turn again.
            exc.metadata.setdefault("chat_message_id", user.id)
            raise
        span.set_attribute("crucible.architect.intent", answer.intent.value)
        applied, rejected = await _apply(answer, request, user, deps.uow())
        recommendation = None
        if answer.run_wish is not None or answer.intent is ArchitectIntent.RUN_REQUEST:
            recommendation = await _recommend(answer.run_wish, request, user, deps.runs)
        contract = contract_text(recommendation)
        if contract:
            await on_delta(("\n\n" if answer.reply else "") + contract, False)
        content = "\n\n".join(part for part in (answer.reply.strip(), contract) if part)
        metadata: JsonObject = {
            "architect": {
                "intent": answer.intent.value,
                "in_reply_to": user.id,
                "llm_call_id": answer.llm_call_id,
                "provider": answer.provider,
                "model": answer.model,
                "applied": applied,
                "rejected": rejected,
            }
        }
        if recommendation is not None:
            metadata["recommended_run_config"] = recommendation.to_json()
        agent = await h.create_chat_message(
            c.CreateChatMessage(session_id, MessageRole.AGENT, content, metadata, chat_message_id=reply_id),
            deps.uow(),
        )
    return ChatTurn(user, agent)


async def _request(user: ChatMessage, deps: TurnDeps) -> ArchitectRequest:
    async with deps.read_uow() as uow:
        session = await uow.repo.get_chat_session(user.chat_session_id)
        if session is None:
            raise ChatSessionNotFound(user.chat_session_id)
        spec = await uow.repo.get_problem_spec(session.project_id)
        world = await uow.repo.get_world_model(session.project_id)
        after = max(0, user.sequence - 1 - HISTORY_MESSAGES)
        earlier = await uow.repo.list_chat_messages(session.id, HISTORY_MESSAGES, after)
    runs: tuple[RunDigest, ...] = ()
    if session.mode is ChatSessionMode.ANALYSIS:
        try:
            runs = await deps.runs.recent_runs(session.project_id, ANALYSIS_RUNS)
        # The Architect can still answer from the ProblemSpec; it is told nothing false.
        except CrucibleError:
            logger.warning("project %s: runs unavailable for an analysis turn", session.project_id, exc_info=True)
    return ArchitectRequest(
        project_id=session.project_id,
        chat_session_id=session.id,
        session_mode=session.mode,
        message=user.content,
        message_id=user.id,
        problem_spec=spec,
        world_model=world,
        history=tuple(ConversationLine(m.role, m.content) for m in earlier if m.sequence < user.sequence),
        runs=runs,
    )


async def _apply(
    answer: ArchitectAnswer, request: ArchitectRequest, user: ChatMessage, uow: AbstractUnitOfWork
) -> tuple[JsonObject, list[JsonObject]]:
    """Both patches in one transaction; one that does not validate is left out whole."""
    applied: JsonObject = {"problem_spec": None, "world_model": None}
    rejected: list[JsonObject] = []
    if answer.spec_patch is None and answer.world_patch is None:
        return applied, rejected
    actor = Actor(ActorKind.ARCHITECT, f"{answer.provider}:{answer.model}")
    reason = _reason(user.content)
    project_id = request.project_id
    async with uow:
        # The project row first, as every edit takes it: the same lock order, so no deadlock.
        await h.lock_project(uow, project_id)
        spec_cmd = world_cmd = None
        if answer.spec_patch is not None:
            merged = merge_spec(await uow.repo.get_problem_spec(project_id, for_update=True), answer.spec_patch)
            if merged.paths:
                spec_cmd = c.UpdateProblemSpec(
                    project_id,
                    constraints=merged.constraints,
                    goals=merged.goals,
                    resolution=merged.resolution,
                    mode=merged.mode,
                    update_mask=merged.paths,
                    allow_missing=True,
                    actor=actor,
                    reason=reason,
                    chat_message_id=user.id,
                )
                spec_cmd = _valid(spec_cmd, h.check_problem_spec_update, "problem_spec", rejected)
        if answer.world_patch is not None:
            stored = await uow.repo.get_world_model(project_id, for_update=True)
            sections, paths = merge_world(stored.model_data if stored else None, answer.world_patch)
            if paths:
                world_cmd = c.UpdateWorldModel(
                    project_id,
                    model_data=sections,
                    update_mask=paths,
                    allow_missing=True,
                    actor=actor,
                    reason=reason,
                    chat_message_id=user.id,
                )
                world_cmd = _valid(world_cmd, h.check_world_model_update, "world_model", rejected)
        if spec_cmd is not None:
            spec, changed = await h.apply_problem_spec_update(spec_cmd, uow)
            if changed:
                applied["problem_spec"] = {"version": spec.version, "changed": list(spec_cmd.update_mask)}
        if world_cmd is not None:
            world, changed = await h.apply_world_model_update(world_cmd, uow)
            if changed:
                applied["world_model"] = {"version": world.version, "changed": list(world_cmd.update_mask)}
        await uow.commit()
    return applied, rejected


def _valid(cmd: U, check: Callable[[U], None], subject: str, rejected: list[JsonObject]) -> U | None:
    try:
        check(cmd)
    except ValidationFailed as exc:
        rejected.append({"subject": subject, "reason": exc.message})
        return None
    return cmd


def _reason(message: str) -> str:
    quoted = " ".join(message.split())
    limit = min(MAX_REASON, 300)
    if len(quoted) > limit:
        quoted = quoted[: limit - 1] + "…"
    return f"Architect, from the chat: “{quoted}”"


async def _recommend(
    wish: RunWish | None, request: ArchitectRequest, user: ChatMessage, runs: RunAdvisor
) -> Recommendation:
    wish = wish or RunWish(None, 0, 0, "")
    with tracer.start_as_current_span("architect.recommend") as span:
        context = span.get_span_context()
        preflight: Preflight | None
        try:
            preflight = await runs.preflight(
                request.project_id, request.chat_session_id, wish.mode, wish.num_candidates, wish.num_scenarios
            )
        except CrucibleError:
            logger.warning("project %s: preflight unavailable; the recommendation is information only", exc_info=True)
            preflight = None
        recommendation = recommend(
            RecommendationSource(
                recommendation_id=str(uuid.uuid4()),
                project_id=request.project_id,
                chat_session_id=request.chat_session_id,
                source_message_id=user.id,
                generated_at=datetime.now(UTC),
                trace=TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}") if context.is_valid else None,
            ),
            wish,
            preflight,
        )
        span.set_attribute("crucible.recommendation_id", recommendation.recommendation_id)
        span.set_attribute("crucible.recommendation.status", recommendation.status.value)
        return recommendation
