"""One handler per use case of the spec context. Handlers validate, load, decide, store."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from crucible_common.errors import FieldViolation, InvalidArgument
from crucible_common.pagination import Cursor, page_request, split_page, time_cursor
from crucible_spec.domain.errors import (
    ChatMessageIdTaken,
    ChatMessageNotFound,
    ChatSessionNotFound,
    PlanningInterviewFailed,
    ProblemSpecNotFound,
    ProjectNotFound,
    SpecNotFound,
    SpecValidated,
    UnknownQuestions,
    VersionConflict,
    WorldModelNotFound,
)
from crucible_spec.domain.model import (
    WORLD_MODEL_SECTIONS,
    ChatMessage,
    ChatSession,
    InterviewMode,
    Page,
    PlanningInterview,
    PlanningQuestion,
    ProblemSpec,
    Project,
    ProvenanceAction,
    ProvenanceEntry,
    Resolution,
    RunMode,
    Spec,
    SpecStatus,
    WorldModel,
)
from crucible_spec.domain.validation import (
    DEFAULT_MAX_QUESTIONS,
    MAX_ANSWER,
    MAX_ANSWERS,
    MAX_DESCRIPTION,
    MAX_MESSAGE_CONTENT,
    MAX_METADATA_BYTES,
    MAX_QUESTIONS,
    MAX_REASON,
    MAX_TASK,
    MAX_TITLE,
    MIN_QUESTIONS,
    Violations,
    check_constraints,
    check_goals,
    check_model_data,
    parse_id,
)
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer.planning import InterviewRequest, PlanningInterviewer, stub_interview
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork

# What an UpdateProject with an empty mask changes.
PROJECT_TEXTS = ("title", "description")
PROBLEM_SPEC_FIELDS = ("constraints", "goals", "resolution", "mode")
DEFAULT_RESOLUTION = Resolution.MEDIUM
DEFAULT_MODE = RunMode.FULL_SEARCH


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _mask(paths: tuple[str, ...], allowed: tuple[str, ...], default: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The paths to change: those named, or ``default`` (else all allowed) when none is."""
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        raise InvalidArgument(
            f"unknown update_mask paths: {', '.join(unknown)}; allowed: {', '.join(allowed)}",
            violations=[FieldViolation("update_mask", f"unknown path {p!r}") for p in unknown],
            reason="INVALID_UPDATE_MASK",
        )
    return paths or (allowed if default is None else default)


async def lock_project(uow: AbstractUnitOfWork, project_id: str) -> Project:
    """The project, its row locked until the transaction ends: every edit of its parts takes it first."""
    return await _require_project(uow, project_id, lock=True)


async def _require_project(uow: AbstractUnitOfWork, project_id: str, *, lock: bool = False) -> Project:
    # Locking the project row serialises the first creation of its ProblemSpec / WorldModel.
    project = await uow.repo.get_project(project_id, for_update=lock)
    if project is None:
        raise ProjectNotFound(project_id)
    return project


# ---------------------------------------------------------------- projects


async def create_project(cmd: c.CreateProject, uow: AbstractUnitOfWork) -> Project:
    v = Violations()
    v.text("title", cmd.title, max_len=MAX_TITLE, required=True)
    v.text("description", cmd.description, max_len=MAX_DESCRIPTION)
    v.raise_if_any()
    replay_of = parse_id(cmd.replay_of_snapshot_id, "replay_of_snapshot_id") if cmd.replay_of_snapshot_id else ""
    now = _now()
    project = Project(_new_id(), cmd.title.strip(), cmd.description, now, now, replay_of_snapshot_id=replay_of)
    async with uow:
        await uow.repo.add_project(project)
        await uow.commit()
    return project


async def get_project(cmd: c.GetProject, uow: AbstractUnitOfWork) -> Project:
    project_id = parse_id(cmd.project_id, "project_id")
    async with uow:
        return await _require_project(uow, project_id)


async def list_projects(cmd: c.ListProjects, uow: AbstractUnitOfWork) -> Page[Project]:
    # A token names the list it pages: one of the list without replays is refused by the one with.
    scope = "projects+replays" if cmd.include_replays else "projects"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    after = (page.after.time, page.after.id) if page.after else None
    async with uow:
        rows = await uow.repo.list_projects(page.size + 1, after, include_replays=cmd.include_replays)
    items, token = split_page(rows, page, time_cursor, scope=scope)
    return Page(items, token)


async def update_project(cmd: c.UpdateProject, uow: AbstractUnitOfWork) -> Project:
    project_id = parse_id(cmd.project_id, "project_id")
    # An empty mask keeps meaning what it meant before the setting existed: title and description.
    paths = _mask(cmd.update_mask, (*PROJECT_TEXTS, "auto_snapshot_failed_runs"), PROJECT_TEXTS)
    v = Violations()
    if "title" in paths:
        v.text("title", cmd.title, max_len=MAX_TITLE, required=True)
    if "description" in paths:
        v.text("description", cmd.description, max_len=MAX_DESCRIPTION)
    v.raise_if_any()
    async with uow:
        project = await uow.repo.get_project(project_id, for_update=True)
        if project is None:
            raise ProjectNotFound(project_id)
        updated = replace(
            project,
            title=cmd.title.strip() if "title" in paths else project.title,
            description=cmd.description if "description" in paths else project.description,
            auto_snapshot_failed_runs=(
                cmd.auto_snapshot_failed_runs
                if "auto_snapshot_failed_runs" in paths
                else project.auto_snapshot_failed_runs
            ),
            updated_at=_now(),
        )
        await uow.repo.save_project(updated)
        await uow.commit()
    return updated


async def delete_project(cmd: c.DeleteProject, uow: AbstractUnitOfWork) -> None:
    project_id = parse_id(cmd.project_id, "project_id")
    async with uow:
        if not await uow.repo.delete_project(project_id):
            raise ProjectNotFound(project_id)
        await uow.commit()


# ---------------------------------------------------------------- chat


async def create_chat_session(cmd: c.CreateChatSession, uow: AbstractUnitOfWork) -> ChatSession:
    project_id = parse_id(cmd.project_id, "project_id")
    v = Violations()
    if cmd.mode is None:
        v.add("mode", "must be setup or analysis")
    v.text("title", cmd.title, max_len=MAX_TITLE)
    v.raise_if_any()
    assert cmd.mode is not None
    now = _now()
    session = ChatSession(_new_id(), project_id, cmd.title.strip() or f"{cmd.mode.value} chat", cmd.mode, now, now)
    async with uow:
        await _require_project(uow, project_id)
        await uow.repo.add_chat_session(session)
        await uow.commit()
    return session


async def get_chat_session(cmd: c.GetChatSession, uow: AbstractUnitOfWork) -> ChatSession:
    session_id = parse_id(cmd.chat_session_id, "chat_session_id")
    async with uow:
        session = await uow.repo.get_chat_session(session_id)
    if session is None:
        raise ChatSessionNotFound(session_id)
    return session


async def list_chat_sessions(cmd: c.ListChatSessions, uow: AbstractUnitOfWork) -> Page[ChatSession]:
    project_id = parse_id(cmd.project_id, "project_id")
    scope = f"chat_sessions:{project_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    after = (page.after.time, page.after.id) if page.after else None
    async with uow:
        await _require_project(uow, project_id)
        rows = await uow.repo.list_chat_sessions(project_id, page.size + 1, after)
    items, token = split_page(rows, page, time_cursor, scope=scope)
    return Page(items, token)


async def create_chat_message(cmd: c.CreateChatMessage, uow: AbstractUnitOfWork) -> ChatMessage:
    session_id = parse_id(cmd.chat_session_id, "chat_session_id")
    v = Violations()
    if cmd.role is None:
        v.add("role", "must be user, agent or system")
    v.text("content", cmd.content, max_len=MAX_MESSAGE_CONTENT, required=True)
    v.json_size("metadata", cmd.metadata, max_bytes=MAX_METADATA_BYTES)
    v.raise_if_any()
    assert cmd.role is not None
    message_id = parse_id(cmd.chat_message_id, "chat_message_id") if cmd.chat_message_id else _new_id()
    now = _now()
    async with uow:
        sequence = await uow.repo.next_message_sequence(session_id, now)
        if sequence is None:
            raise ChatSessionNotFound(session_id)
        if cmd.chat_message_id:
            # Under the session's lock (next_message_sequence), so two creates of one id cannot race.
            existing = await uow.repo.get_chat_message(message_id)
            if existing is not None:
                if existing.chat_session_id != session_id:
                    raise ChatMessageIdTaken(message_id)
                return existing
        message = ChatMessage(message_id, session_id, sequence, cmd.role, cmd.content, dict(cmd.metadata), now)
        await uow.repo.add_chat_message(message)
        await uow.commit()
    return message


async def get_chat_message(cmd: c.GetChatMessage, uow: AbstractUnitOfWork) -> tuple[ChatMessage, str]:
    """The message and its session's project."""
    message_id = parse_id(cmd.chat_message_id, "chat_message_id")
    async with uow:
        message = await uow.repo.get_chat_message(message_id)
        session = await uow.repo.get_chat_session(message.chat_session_id) if message else None
    if message is None or session is None:
        raise ChatMessageNotFound(message_id)
    return message, session.project_id


async def list_chat_messages(cmd: c.ListChatMessages, uow: AbstractUnitOfWork) -> Page[ChatMessage]:
    session_id = parse_id(cmd.chat_session_id, "chat_session_id")
    scope = f"chat_messages:{session_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="number")
    after = int(page.after.key) if page.after else 0
    async with uow:
        if await uow.repo.get_chat_session(session_id) is None:
            raise ChatSessionNotFound(session_id)
        rows = await uow.repo.list_chat_messages(session_id, page.size + 1, after)
    items, token = split_page(rows, page, lambda x: Cursor(str(x.sequence), x.id), scope=scope)
    return Page(items, token)


# ---------------------------------------------------------------- ProblemSpec


async def get_problem_spec(cmd: c.GetProblemSpec, uow: AbstractUnitOfWork) -> ProblemSpec:
    project_id = parse_id(cmd.project_id, "project_id")
    async with uow:
        spec = await uow.repo.get_problem_spec(project_id)
        if spec is None:
            await _require_project(uow, project_id)
            raise ProblemSpecNotFound(project_id)
    return spec


async def update_problem_spec(cmd: c.UpdateProblemSpec, uow: AbstractUnitOfWork) -> ProblemSpec:
    check_problem_spec_update(cmd)
    async with uow:
        stored, changed = await apply_problem_spec_update(cmd, uow)
        if changed:
            await uow.commit()
    return stored


def check_problem_spec_update(cmd: c.UpdateProblemSpec) -> None:
    """The update's own validity, before any transaction: bad input is refused whole."""
    parse_id(cmd.project_id, "project_id")
    paths = _mask(cmd.update_mask, PROBLEM_SPEC_FIELDS)
    v = Violations()
    if "constraints" in paths:
        check_constraints(v, cmd.constraints)
    if "goals" in paths:
        check_goals(v, cmd.goals)
    v.text("reason", cmd.reason, max_len=MAX_REASON)
    v.raise_if_any()


async def apply_problem_spec_update(cmd: c.UpdateProblemSpec, uow: AbstractUnitOfWork) -> tuple[ProblemSpec, bool]:
    """The change and its provenance entry, in the caller's open transaction (committed by the caller);
    with whether anything changed.

    Manual edits and the Architect's patches both go through here, so both are validated,
    versioned and recorded alike.
    """
    check_problem_spec_update(cmd)
    project_id = parse_id(cmd.project_id, "project_id")
    paths = _mask(cmd.update_mask, PROBLEM_SPEC_FIELDS)
    await _require_project(uow, project_id, lock=True)
    current = await uow.repo.get_problem_spec(project_id, for_update=True)
    if current is None and not cmd.allow_missing:
        raise ProblemSpecNotFound(project_id)
    _check_version("ProblemSpec", cmd.expected_version, current.version if current else 0)
    now = _now()
    base = current or ProblemSpec(project_id, (), (), DEFAULT_RESOLUTION, DEFAULT_MODE, 0, now, now)
    proposed = replace(
        base,
        constraints=tuple(cmd.constraints) if "constraints" in paths else base.constraints,
        goals=tuple(cmd.goals) if "goals" in paths else base.goals,
        resolution=(cmd.resolution or base.resolution) if "resolution" in paths else base.resolution,
        mode=(cmd.mode or base.mode) if "mode" in paths else base.mode,
    )
    before, after = base.field_values(), proposed.field_values()
    changed = tuple(f for f in PROBLEM_SPEC_FIELDS if current is None or before[f] != after[f])
    if not changed:
        return base, False
    stored = replace(proposed, version=base.version + 1, updated_at=now)
    await uow.repo.save_problem_spec(stored, is_new=current is None)
    await uow.repo.append_provenance(
        "problem_spec",
        _provenance(cmd, project_id, stored.version, current is None, changed, {f: after[f] for f in changed}, now),
    )
    return stored, True


# ---------------------------------------------------------------- WorldModel


async def get_world_model(cmd: c.GetWorldModel, uow: AbstractUnitOfWork) -> WorldModel:
    project_id = parse_id(cmd.project_id, "project_id")
    async with uow:
        model = await uow.repo.get_world_model(project_id)
        if model is None:
            await _require_project(uow, project_id)
            raise WorldModelNotFound(project_id)
    return model


async def update_world_model(cmd: c.UpdateWorldModel, uow: AbstractUnitOfWork) -> WorldModel:
    check_world_model_update(cmd)
    async with uow:
        stored, changed = await apply_world_model_update(cmd, uow)
        if changed:
            await uow.commit()
    return stored


def check_world_model_update(cmd: c.UpdateWorldModel) -> None:
    """The update's own validity, before any transaction: bad input is refused whole."""
    parse_id(cmd.project_id, "project_id")
    _mask(cmd.update_mask, ("model_data", *_SECTION_PATHS))
    v = Violations()
    check_model_data(v, cmd.model_data)
    v.text("reason", cmd.reason, max_len=MAX_REASON)
    v.raise_if_any()


async def apply_world_model_update(cmd: c.UpdateWorldModel, uow: AbstractUnitOfWork) -> tuple[WorldModel, bool]:
    """The change and its provenance entry, in the caller's open transaction (committed by the caller)."""
    check_world_model_update(cmd)
    project_id = parse_id(cmd.project_id, "project_id")
    paths = _mask(cmd.update_mask, ("model_data", *_SECTION_PATHS))
    await _require_project(uow, project_id, lock=True)
    current = await uow.repo.get_world_model(project_id, for_update=True)
    if current is None and not cmd.allow_missing:
        raise WorldModelNotFound(project_id)
    _check_version("WorldModel", cmd.expected_version, current.version if current else 0)
    now = _now()
    before = dict(current.model_data) if current else {}
    if "model_data" in paths:
        after = dict(cmd.model_data)
    else:
        after = dict(before)
        for path in paths:
            section = path.removeprefix("model_data.")
            after[section] = cmd.model_data.get(section, [])
    # Every section is present in a stored WorldModel, so readers need not guess.
    for section in WORLD_MODEL_SECTIONS:
        after.setdefault(section, [])
    changed = tuple(f"model_data.{s}" for s in WORLD_MODEL_SECTIONS if current is None or before.get(s) != after.get(s))
    if current is not None and not changed:
        return current, False
    stored = WorldModel(
        project_id=project_id,
        model_data=after,
        version=(current.version if current else 0) + 1,
        created_at=current.created_at if current else now,
        updated_at=now,
    )
    await uow.repo.save_world_model(stored, is_new=current is None)
    sections = {f.removeprefix("model_data."): after[f.removeprefix("model_data.")] for f in changed}
    await uow.repo.append_provenance(
        "world_model", _provenance(cmd, project_id, stored.version, current is None, changed, sections, now)
    )
    return stored, True


_SECTION_PATHS = tuple(f"model_data.{s}" for s in WORLD_MODEL_SECTIONS)


# ---------------------------------------------------------------- provenance


async def list_provenance(cmd: c.ListProvenance, subject: str, uow: AbstractUnitOfWork) -> Page[ProvenanceEntry]:
    project_id = parse_id(cmd.project_id, "project_id")
    scope = f"provenance:{subject}:{project_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="number")
    after = int(page.after.key) if page.after else 0
    async with uow:
        await _require_project(uow, project_id)
        rows = await uow.repo.list_provenance(project_id, subject, page.size + 1, after)
    items, token = split_page(rows, page, lambda x: Cursor(str(x.version), x.id), scope=scope)
    return Page(items, token)


def _provenance(
    cmd: c.UpdateProblemSpec | c.UpdateWorldModel,
    project_id: str,
    version: int,
    created: bool,
    changed: tuple[str, ...],
    changes: dict[str, object],
    at: datetime,
) -> ProvenanceEntry:
    return ProvenanceEntry(
        id=_new_id(),
        project_id=project_id,
        version=version,
        actor=cmd.actor,
        action=ProvenanceAction.CREATED if created else ProvenanceAction.UPDATED,
        changed_fields=changed,
        reason=cmd.reason,
        changes=changes,
        created_at=at,
        chat_message_id=cmd.chat_message_id,
    )


def _check_version(what: str, expected: int, actual: int) -> None:
    if expected and expected != actual:
        raise VersionConflict(what, expected, actual)


# ---------------------------------------------------------------- specs and their planning interview

DEFAULT_TITLE_WORDS = 8


async def create_spec_with_planning(
    cmd: c.CreateSpecWithPlanning, uow: AbstractUnitOfWork, interviewer: PlanningInterviewer
) -> Spec:
    v = Violations()
    v.text("task", cmd.task, max_len=MAX_TASK, required=True)
    v.text("title", cmd.title, max_len=MAX_TITLE)
    max_questions = cmd.max_questions or DEFAULT_MAX_QUESTIONS
    if not MIN_QUESTIONS <= max_questions <= MAX_QUESTIONS:
        v.add("max_questions", f"must be between {MIN_QUESTIONS} and {MAX_QUESTIONS} (got {cmd.max_questions})")
    v.raise_if_any()
    task = cmd.task.strip()
    mode = cmd.mode or InterviewMode.DUAL_SUBAGENT
    request = InterviewRequest(_new_id(), task, max_questions, mode)
    # The models are asked before any transaction opens: no connection is held while they think,
    # and a failed interview leaves nothing behind.
    if mode is InterviewMode.STUB:
        result = stub_interview(task, max_questions)
    else:
        result = await interviewer.interview(request)
    questions = _usable_questions(result.questions, max_questions)
    if not questions:
        raise PlanningInterviewFailed("the interview produced no usable question", metadata={"mode": mode.value})
    now = _now()
    spec = Spec(
        id=request.spec_id,
        status=SpecStatus.DRAFT,
        task=task,
        title=cmd.title.strip() or default_title(task),
        planning=PlanningInterview.asked(questions, result.metadata.to_json()),
        created_at=now,
        updated_at=now,
    )
    async with uow:
        await uow.repo.add_spec(spec)
        await uow.commit()
    return spec


async def save_planning_answers(cmd: c.SavePlanningAnswers, uow: AbstractUnitOfWork) -> Spec:
    """Merge the answers into the spec's; planning is "answered" once every question has one."""
    spec_id = parse_id(cmd.spec_id, "spec_id")
    v = Violations()
    if not cmd.answers:
        v.add("answers", "at least one answer is required")
    if len(cmd.answers) > MAX_ANSWERS:
        v.add("answers", f"at most {MAX_ANSWERS} answers")
    seen: set[str] = set()
    for i, a in enumerate(cmd.answers):
        if not a.question.strip():
            v.add(f"answers[{i}].question", "must not be empty")
        elif a.question in seen:
            v.add(f"answers[{i}].question", "answered twice in this request")
        seen.add(a.question)
        v.text(f"answers[{i}].answer", a.answer, max_len=MAX_ANSWER, required=True)
    v.raise_if_any()
    async with uow:
        spec = await uow.repo.get_spec(spec_id, for_update=True)
        if spec is None:
            raise SpecNotFound(spec_id)
        if spec.status is SpecStatus.VALIDATED:
            raise SpecValidated(spec_id)
        asked = {q.question for q in spec.planning.questions}
        unknown = [
            FieldViolation(f"answers[{i}].question", f"not a question of this spec: {a.question!r}"[:500])
            for i, a in enumerate(cmd.answers)
            if a.question not in asked
        ]
        if unknown:
            raise UnknownQuestions(unknown)
        updated = replace(spec, planning=spec.planning.with_answers(cmd.answers), updated_at=_now())
        await uow.repo.save_spec(updated)
        await uow.commit()
    return updated


async def get_spec(cmd: c.GetSpec, uow: AbstractUnitOfWork) -> Spec:
    spec_id = parse_id(cmd.spec_id, "spec_id")
    async with uow:
        spec = await uow.repo.get_spec(spec_id)
    if spec is None:
        raise SpecNotFound(spec_id)
    return spec


async def list_specs(cmd: c.ListSpecs, uow: AbstractUnitOfWork) -> Page[Spec]:
    page = page_request(cmd.page_size, cmd.page_token, scope="specs")
    after = (page.after.time, page.after.id) if page.after else None
    async with uow:
        rows = await uow.repo.list_specs(page.size + 1, after)
    items, token = split_page(rows, page, time_cursor, scope="specs")
    return Page(items, token)


def default_title(task: str) -> str:
    """The task's first words, within the title limit."""
    words = task.split()
    title = " ".join(words[:DEFAULT_TITLE_WORDS])
    if len(words) > DEFAULT_TITLE_WORDS or len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 3].rstrip() + "..."
    return title


def _usable_questions(proposed: tuple[PlanningQuestion, ...], limit: int) -> tuple[PlanningQuestion, ...]:
    # Answers name questions by their exact text, so blank or repeated questions cannot stay.
    kept: dict[str, PlanningQuestion] = {}
    for q in proposed:
        text = q.question.strip()
        if text and text not in kept:
            kept[text] = PlanningQuestion(text, q.rationale.strip())
    return tuple(kept.values())[:limit]
