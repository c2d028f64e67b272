"""The record of Complete requests' model calls, written many per transaction, and the claims that
keep a keyed call from being paid twice.

Concurrent completions (a run evaluates fifty pairs at once) each store their attempts before
they answer; grouped, fifty answers cost one or two transactions instead of fifty. Claiming the
idempotency keys asked meanwhile is grouped the same way.

A keyed call is claimed before it is sent: one row a key, held by the one call paying a provider
for it. In this process, a second request of the key joins the first (``in_flight``; a streamed
one, which lives with its caller, waits on the claim instead); another process (the agent service
has replicas) finds the key held and waits until it is answered, then answers from the stored
call, as for any key answered before. A run whose runner died re-asks its calls in flight, and the
re-ask may reach any replica: without the claim, each would pay.

A claim lapses unless its process renews it: a dead process's lapses, and another process then
makes the call. An answered call's claim is left to lapse, since whoever asks its key finds the
answer first; an unanswered one's is dropped when its attempts are stored, so that a retry of the
key does not wait. The claims table is UNLOGGED: a claim round (one statement) does not wait on
the write-ahead log, which is why claiming even keys already answered costs next to nothing.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crucible_agent.domain.model import LlmCall, LlmResult
from crucible_agent.service_layer.llm import LlmOutcome
from crucible_agent.service_layer.ports import Claims
from crucible_agent.service_layer.unit_of_work import UowFactory
from crucible_common.batching import GroupCommit, GroupLookup
from crucible_common.database import database_unavailable, deadlocked, while_database_unavailable
from crucible_common.leases import HEARTBEAT_SECONDS, LEASE_SECONDS, process_owner
from crucible_common.single_flight import SingleFlight

logger = logging.getLogger(__name__)

# How long a claim waits for others to share its round. A model call takes hundreds of
# milliseconds, in which 5 ms more are lost; but a run's fifty evaluations arrive a millisecond
# or two apart, and without the wait nearly every one had its own round (1.05 keys per query on
# run_pipeline). Writes do not wait: they already gather behind the write in flight (1.8 calls
# each), and a wait before each measured slower on llm_fanout (ratio 1.30-1.39 against 1.18-1.21).
LOOKUP_LINGER_SECONDS = 0.005
# ... but only within a burst: a claim asked after this long without a round is not one of fifty
# (a run's design and scenario calls, a chat turn) and starts its round at once; the calls of a
# burst behind it gather behind that round, then linger as above.
LOOKUP_QUIET_SECONDS = 0.05
# How often a request whose key another process holds looks again: soon at first (most calls
# take seconds), then at most every second.
FIRST_LOOK_SECONDS = 0.1
LOOK_AT_MOST_EVERY_SECONDS = 1.0
# How many times a claim round is run when Postgres ends it for a deadlock.
DEADLOCK_RETRIES = 3


class _Claimed(enum.Enum):
    HERE = "here"


@dataclass(frozen=True)
class Claim:
    """This call's claim of its key: hand it to ``CallLog.store`` or ``CallLog.release``."""

    key: str
    token: str
    # The run the call is for ('' outside a run): a continued run waits for its calls in flight.
    run_id: str = ""


@dataclass(frozen=True)
class _Write:
    """Attempts to store (``outcome``), and the claim they end."""

    outcome: LlmOutcome
    ends: Claim | None = None


class CallLog:
    def __init__(
        self,
        uow: UowFactory,
        *,
        owner: str = "",
        claim_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._uow = uow
        # Each claim is one call's: its token is this process's name and a number of its own, so a
        # second call of a key in this process waits for the first as another process's would.
        self._owner = owner or process_owner()
        self._numbers = itertools.count(1)
        self._claim_seconds = claim_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._writes = GroupCommit[_Write](self._write)
        self._claims = GroupLookup[Claim, LlmCall | _Claimed](
            self._claim, linger=LOOKUP_LINGER_SECONDS, quiet=LOOKUP_QUIET_SECONDS
        )
        # The claims held here, renewed every heartbeat until their calls end.
        self._held: set[Claim] = set()
        self._releases: set[asyncio.Task[None]] = set()
        # Keyed calls in flight in this process (see handlers.complete).
        self.in_flight = SingleFlight[str, LlmResult]()

    async def store(self, outcome: LlmOutcome, ends: Claim | None = None) -> None:
        """Return once the outcome's attempts (and a new recording) are committed; the claim
        ``ends`` (the call's, if keyed) ends with them."""
        try:
            await self._writes.store(_Write(outcome, ends))
        finally:
            if ends is not None:
                self._held.discard(ends)

    async def claim(self, idempotency_key: str, run_id: str = "") -> LlmCall | Claim:
        """The first stored call of the key that was answered; or, when there is none, this call's
        claim of the key, to end with ``store`` or ``release``. While another call holds the key,
        this waits for it to end."""
        pause = FIRST_LOOK_SECONDS
        while True:
            ask = Claim(idempotency_key, f"{self._owner}:{next(self._numbers)}", run_id)
            # The round goes on when its asker leaves: a claim it wins then is let go, not held
            # by nobody until it lapses (and kept by every renewal meanwhile).
            round_ = self._claims.ask(ask)
            try:
                found = await asyncio.shield(round_)
            except asyncio.CancelledError:
                round_.add_done_callback(functools.partial(self._left, ask))
                raise
            if found is _Claimed.HERE:
                return ask
            if isinstance(found, LlmCall):
                return found
            await asyncio.sleep(pause)
            pause = min(pause * 2, LOOK_AT_MOST_EVERY_SECONDS)

    def release(self, claim: Claim) -> None:
        """End a claim whose call stored nothing through ``store`` (it failed, or was cancelled):
        in the background, since its caller may be cancelled and unable to wait."""
        if claim not in self._held:
            return
        self._held.discard(claim)
        task = asyncio.get_running_loop().create_task(self._release([claim]))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def renew_forever(self) -> None:
        """For the service's lifetime: renew the claims of the calls in flight here."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            held = list(self._held)
            try:
                async with self._uow() as uow:
                    renewed = await uow.repo.renew_claims(
                        [c.key for c in held], [c.token for c in held], self._claim_seconds
                    )
                    # Those of dead processes whose keys nobody asked again since.
                    await uow.repo.drop_lapsed_claims()
                    await uow.commit()
            # The loop must outlive a lost database (and anything else): the claims still have
            # time, and the next beat tries again.
            except Exception as exc:
                logger.warning(
                    "could not renew the claims of %d calls in flight: %s",
                    *(len(held), exc),
                    exc_info=not database_unavailable(exc),
                )
                continue
            for lapsed in (c for c in held if c.token not in renewed and c in self._held):
                # The database was away longer than a claim: another process may have taken the
                # key and be making the call too. Nothing can stop the one in flight here.
                logger.warning("the claim of %r lapsed while its call was in flight", lapsed.key)

    async def close(self) -> None:
        """At shutdown: stop the keyed calls still in flight here (their paid attempts are stored
        apart, see ``LlmService.drain``), then release every claim still held, so that no other
        process waits them out. Before ``LlmService.drain``."""
        await self.in_flight.cancel()
        # What those calls had started goes on in the rounds' own tasks: their answers' writes,
        # and claim rounds whose winners are let go (``_left``).
        await self._writes.settled()
        await self._claims.settled()
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        held, self._held = list(self._held), set()
        if held:
            await self._release(held)

    def _left(self, ask: Claim, round_: asyncio.Future[LlmCall | _Claimed | None]) -> None:
        if not round_.cancelled() and round_.exception() is None and round_.result() is _Claimed.HERE:
            self.release(ask)

    async def _release(self, claims: list[Claim]) -> None:
        try:
            async with self._uow() as uow:
                await uow.repo.release_claims([c.key for c in claims], [c.token for c in claims])
                await uow.commit()
        except Exception as exc:
            # Not lost: a claim nobody renews lapses by itself, and another call of its key waits
            # until then at most.
            logger.warning(
                "could not release %d claims (they lapse by themselves): %s",
                *(len(claims), exc),
                exc_info=not database_unavailable(exc),
            )

    async def _write(self, writes: list[_Write]) -> None:
        # Paid answers: a database away for a moment delays them, it does not drop them.
        await while_database_unavailable(lambda: self._write_once(writes), what="storing model calls")

    async def _write_once(self, writes: list[_Write]) -> None:
        outcomes = [w.outcome for w in writes]
        # An answered key's claim is left to lapse (it is no longer renewed): whoever asks the key
        # meanwhile finds the answer. An unanswered one's goes now, so the next ask need not wait.
        ended = [w.ends for w in writes if w.ends is not None and w.outcome.result is None]
        async with self._uow() as uow:
            await uow.repo.add_llm_calls([call for outcome in outcomes for call in outcome.calls])
            for outcome in outcomes:
                if outcome.recording is not None:
                    r = outcome.recording
                    await uow.repo.save_recording(r.key, r.request_hash, r.provider, r.response)
            if ended:
                await uow.repo.release_claims([c.key for c in ended], [c.token for c in ended])
            await uow.commit()

    async def _claim_once(self, firsts: list[Claim]) -> Claims:
        # A round takes its keys' row locks in key order, so two rounds do not deadlock on each
        # other; a renewal or a release (in the order of the table's rows) still can, rarely, and
        # Postgres then ends one of them. The round loses nothing by being run again.
        attempt = 1
        while True:
            try:
                async with self._uow(single_statement=True) as uow:
                    claims = await uow.repo.claim_unanswered(
                        [a.key for a in firsts],
                        [a.token for a in firsts],
                        [a.run_id for a in firsts],
                        self._claim_seconds,
                    )
                    await uow.commit()
                return claims
            except Exception as exc:
                if not deadlocked(exc) or attempt == DEADLOCK_RETRIES:
                    raise
                attempt += 1
                logger.info("a claim round met a deadlock; running it again")

    async def _claim(self, asks: Sequence[Claim]) -> Mapping[Claim, LlmCall | _Claimed]:
        # One ask a key a round (a key's second ask looks again later, as if held elsewhere).
        firsts = list({a.key: a for a in reversed(asks)}.values())
        claims = await self._claim_once(firsts)
        won = [a for a in firsts if a.token in claims.won and a.key not in claims.answered]
        # Held (so renewed) from here, whether or not its asker is still there to take it.
        self._held.update(won)
        found: dict[Claim, LlmCall | _Claimed] = {a: claims.answered[a.key] for a in asks if a.key in claims.answered}
        found.update((a, _Claimed.HERE) for a in won)
        return found
