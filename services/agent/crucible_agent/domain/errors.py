"""The agent context's errors. Provider failures are domain errors with stable reasons."""

from __future__ import annotations

from crucible_common.errors import (
    CrucibleError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

# An error travels in a trailer of a few kilobytes at most: its raw answer is cut to this, and
# ``raw_answer_chars`` says how long it was (GetLlmCall gives it whole).
RAW_ANSWER_IN_ERRORS = 500


def raw_answer_metadata(raw: str) -> dict[str, str]:
    return {"raw_answer": raw[:RAW_ANSWER_IN_ERRORS], "raw_answer_chars": str(len(raw))}


class ProviderError(CrucibleError):
    """A provider call failed; ``retryable`` ones are retried with backoff first."""

    retryable = False

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{provider}: {message}", metadata={"provider": provider})
        self.provider = provider
        self.retry_after = retry_after


class ProviderRateLimited(ProviderError, ResourceExhausted):
    retryable = True
    default_reason = "PROVIDER_RATE_LIMITED"


class ProviderUnavailable(ProviderError, Unavailable):
    retryable = True
    default_reason = "PROVIDER_UNAVAILABLE"


class ProviderTimeout(ProviderError, Unavailable):
    retryable = True
    default_reason = "PROVIDER_TIMEOUT"


class ProviderAuthFailed(ProviderError, Unavailable):
    """The service's own provider credentials were refused: a server problem, not the caller's."""

    default_reason = "PROVIDER_AUTH_FAILED"


class ProviderRejected(ProviderError, InvalidArgument):
    """The provider refused the request itself (bad model name, too long, ...)."""

    default_reason = "PROVIDER_REJECTED_REQUEST"

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None) -> None:
        ProviderError.__init__(self, provider, message, retry_after=retry_after)
        self.violations = []


class ProviderNotConfigured(FailedPrecondition):
    def __init__(self, provider: str) -> None:
        super().__init__(
            f"provider {provider!r} has no API key and no base URL configured",
            reason="PROVIDER_NOT_CONFIGURED",
            metadata={"provider": provider},
        )


class UnknownProvider(InvalidArgument):
    def __init__(self, provider: str, field: str = "provider") -> None:
        from crucible_common.errors import FieldViolation

        super().__init__(
            f"unknown provider {provider!r}; expected openai or anthropic",
            violations=[FieldViolation(field, "must be openai or anthropic")],
            reason="UNKNOWN_PROVIDER",
        )


class CallAbandoned(CrucibleError):
    """Not raised: what the stored row of an attempt its caller abandoned says (``cancelled``)."""

    default_reason = "CANCELLED"

    def __init__(self) -> None:
        super().__init__("the caller left before the answer")


class StructuredOutputInvalid(CrucibleError):
    """The model's answer did not validate against the schema, after every allowed retry.

    Loud on purpose: the raw answer is kept on the stored call and never replaced by a default.
    """

    default_reason = "STRUCTURED_OUTPUT_INVALID"

    def __init__(self, message: str, *, llm_call_id: str, raw: str) -> None:
        super().__init__(message, metadata={"llm_call_id": llm_call_id, **raw_answer_metadata(raw)})
        self.llm_call_id = llm_call_id
        self.raw = raw


class ReplayMiss(FailedPrecondition):
    def __init__(self, recording_key: str, request_hash: str, *, run_id: str = "") -> None:
        if run_id:
            message = (
                f"run {run_id} made no call with this request ({request_hash[:16]}…): "
                "the replay diverged from the run it replays"
            )
        else:
            message = (
                f"no recorded response in {recording_key!r} for request {request_hash[:16]}…; "
                "record it first (recording mode RECORD) or replay the same request"
            )
        super().__init__(
            message, reason="REPLAY_MISS", metadata={"recording_key": recording_key, "request_hash": request_hash}
        )


class ReplayedFailure(FailedPrecondition):
    """The replayed run's call with this request failed; its replay fails the same way, with its reason.

    So a replay reproduces the source's failed evaluations as failures (the same reason, the same
    raw answer) instead of diverging from it.
    """

    def __init__(self, reason: str, message: str, *, recording_key: str, raw: str) -> None:
        # The message is the source's own, so the replayed call's record reads as the source's did.
        super().__init__(message, reason=reason, metadata={"recording_key": recording_key, **raw_answer_metadata(raw)})


class AgentRunNotFound(NotFound):
    def __init__(self, agent_run_id: str) -> None:
        super().__init__(
            f"agent run {agent_run_id} not found", reason="AGENT_RUN_NOT_FOUND", metadata={"agent_run_id": agent_run_id}
        )


class LlmCallNotFound(NotFound):
    def __init__(self, llm_call_id: str) -> None:
        super().__init__(
            f"model call {llm_call_id} not found", reason="LLM_CALL_NOT_FOUND", metadata={"llm_call_id": llm_call_id}
        )


class CheckpointNotFound(NotFound):
    def __init__(self, agent_run_id: str, checkpoint: str) -> None:
        super().__init__(
            f"agent run {agent_run_id} has no checkpoint {checkpoint!r}",
            reason="CHECKPOINT_NOT_FOUND",
            metadata={"agent_run_id": agent_run_id, "checkpoint": checkpoint},
        )


class IdempotencyKeyReused(FailedPrecondition):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} already names a different request; a key names one call",
            reason="IDEMPOTENCY_KEY_REUSED",
            metadata={"idempotency_key": key},
        )
