"""Proto ⇄ domain conversions for the spec service (no logic beyond translation)."""

from __future__ import annotations

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.enums import ProtoEnum
from crucible_common.protobuf import struct, timestamp
from crucible_spec.domain.model import (
    Actor,
    ActorKind,
    ChatMessage,
    ChatSession,
    ChatSessionMode,
    Constraint,
    Goal,
    InterviewMode,
    MessageRole,
    PlanningAnswer,
    PlanningInterview,
    PlanningStatus,
    ProblemSpec,
    Project,
    ProvenanceEntry,
    Resolution,
    RunMode,
    Spec,
    SpecStatus,
    WorldModel,
)

CHAT_MODE = ProtoEnum(pb.ChatSessionMode, ChatSessionMode)
ROLE = ProtoEnum(pb.MessageRole, MessageRole)
RESOLUTION = ProtoEnum(pb.Resolution, Resolution)
RUN_MODE = ProtoEnum(pb.RunMode, RunMode)
ACTOR_KIND = ProtoEnum(actor_pb2.ActorKind, ActorKind)
INTERVIEW_MODE = ProtoEnum(pb.InterviewMode, InterviewMode)
SPEC_STATUS = ProtoEnum(pb.SpecStatus, SpecStatus)
PLANNING_STATUS = ProtoEnum(pb.PlanningStatus, PlanningStatus)


def actor(message: actor_pb2.Actor) -> Actor:
    kind = ACTOR_KIND.from_proto(message.kind, "actor.kind") or ActorKind.USER
    return Actor(kind, message.id)


def project(p: Project) -> pb.Project:
    return pb.Project(
        id=p.id,
        title=p.title,
        description=p.description,
        create_time=timestamp(p.created_at),
        update_time=timestamp(p.updated_at),
        auto_snapshot_failed_runs=p.auto_snapshot_failed_runs,
        replay_of_snapshot_id=p.replay_of_snapshot_id,
    )


def chat_session(s: ChatSession) -> pb.ChatSession:
    return pb.ChatSession(
        id=s.id,
        project_id=s.project_id,
        title=s.title,
        mode=CHAT_MODE.to_proto(s.mode),
        create_time=timestamp(s.created_at),
        update_time=timestamp(s.updated_at),
    )


def chat_message(m: ChatMessage) -> pb.ChatMessage:
    return pb.ChatMessage(
        id=m.id,
        chat_session_id=m.chat_session_id,
        sequence=m.sequence,
        role=ROLE.to_proto(m.role),
        content=m.content,
        metadata=struct(m.metadata),
        create_time=timestamp(m.created_at),
    )


def constraints(items: list[pb.Constraint]) -> tuple[Constraint, ...]:
    return tuple(Constraint(c.name, c.description, c.weight) for c in items)


def goals(items: list[pb.Goal]) -> tuple[Goal, ...]:
    return tuple(Goal(g.description) for g in items)


def problem_spec(s: ProblemSpec) -> pb.ProblemSpec:
    return pb.ProblemSpec(
        project_id=s.project_id,
        constraints=[pb.Constraint(name=c.name, description=c.description, weight=c.weight) for c in s.constraints],
        goals=[pb.Goal(description=g.description) for g in s.goals],
        resolution=RESOLUTION.to_proto(s.resolution),
        mode=RUN_MODE.to_proto(s.mode),
        version=s.version,
        create_time=timestamp(s.created_at),
        update_time=timestamp(s.updated_at),
    )


def world_model(m: WorldModel) -> pb.WorldModel:
    return pb.WorldModel(
        project_id=m.project_id,
        model_data=struct(m.model_data),
        version=m.version,
        create_time=timestamp(m.created_at),
        update_time=timestamp(m.updated_at),
    )


def provenance_entry(e: ProvenanceEntry) -> pb.ProvenanceEntry:
    return pb.ProvenanceEntry(
        id=e.id,
        version=e.version,
        actor=actor_pb2.Actor(kind=ACTOR_KIND.to_proto(e.actor.kind), id=e.actor.id),
        action=e.action.value,
        changed_fields=list(e.changed_fields),
        reason=e.reason,
        changes=struct(e.changes),
        create_time=timestamp(e.created_at),
        chat_message_id=e.chat_message_id,
    )


def planning_answers(items: list[pb.PlanningAnswer]) -> tuple[PlanningAnswer, ...]:
    return tuple(PlanningAnswer(a.question, a.answer) for a in items)


def planning(p: PlanningInterview) -> pb.PlanningInterview:
    return pb.PlanningInterview(
        status=PLANNING_STATUS.to_proto(p.status),
        questions=[pb.PlanningQuestion(question=q.question, rationale=q.rationale) for q in p.questions],
        answers=[pb.PlanningAnswer(question=a.question, answer=a.answer) for a in p.answers],
        metadata=struct(p.metadata),
    )


def spec(s: Spec) -> pb.Spec:
    return pb.Spec(
        id=s.id,
        status=SPEC_STATUS.to_proto(s.status),
        task=s.task,
        title=s.title,
        artifacts=struct(s.artifacts()),
        planning=planning(s.planning),
        create_time=timestamp(s.created_at),
        update_time=timestamp(s.updated_at),
    )
