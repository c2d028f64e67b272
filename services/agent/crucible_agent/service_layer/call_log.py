"""The record of Complete requests' model calls, written many per transaction.

Concurrent completions (a run evaluates fifty pairs at once) each store their attempts before
they answer; grouped, fifty answers cost one or two transactions instead of fifty. Finding the
stored answer of an idempotency key is grouped the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crucible_agent.domain.model import LlmCall, LlmResult
from crucible_agent.service_layer.llm import LlmOutcome
from crucible_agent.service_layer.unit_of_work import UowFactory
from crucible_common.batching import GroupCommit, GroupLookup
from crucible_common.database import while_database_unavailable
from crucible_common.single_flight import SingleFlight

# How long an idempotency lookup waits for others to share its query. A model call takes hundreds
# of milliseconds, in which 5 ms more are lost; but a run's fifty evaluations arrive a millisecond
# or two apart, and without the wait nearly every one had its own query (1.05 keys per query on
# run_pipeline). Writes do not wait: they already gather behind the write in flight (1.8 calls
# each), and a wait before each measured slower on llm_fanout (ratio 1.30-1.39 against 1.18-1.21).
LOOKUP_LINGER_SECONDS = 0.005


class CallLog:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow
        self._writes = GroupCommit[LlmOutcome](self._write)
        self._lookups = GroupLookup[str, LlmCall](self._fetch, linger=LOOKUP_LINGER_SECONDS)
        # Keyed calls in flight in this process (see handlers.complete).
        self.in_flight = SingleFlight[str, LlmResult]()

    async def store(self, outcome: LlmOutcome) -> None:
        """Return once the outcome's attempts (and a new recording) are committed."""
        await self._writes.store(outcome)

    async def succeeded(self, idempotency_key: str) -> LlmCall | None:
        """The first stored call of the key that succeeded."""
        return await self._lookups.get(idempotency_key)

    async def _write(self, outcomes: list[LlmOutcome]) -> None:
        # Paid answers: a database away for a moment delays them, it does not drop them.
        await while_database_unavailable(lambda: self._write_once(outcomes), what="storing model calls")

    async def _write_once(self, outcomes: list[LlmOutcome]) -> None:
        async with self._uow() as uow:
            await uow.repo.add_llm_calls([call for outcome in outcomes for call in outcome.calls])
            for outcome in outcomes:
                if outcome.recording is not None:
                    r = outcome.recording
                    await uow.repo.save_recording(r.key, r.request_hash, r.provider, r.response)
            await uow.commit()

    async def _fetch(self, keys: Sequence[str]) -> Mapping[str, LlmCall]:
        async with self._uow(read_only=True) as uow:
            return await uow.repo.succeeded_calls(keys)
