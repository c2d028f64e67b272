"""The one interface every model provider adapter implements."""

from __future__ import annotations

import abc
import asyncio
import importlib
from types import ModuleType

from crucible_agent.domain.model import LlmRequest, ProviderResponse, TextSink

# Client errors that say "try again", which both SDKs retry too: a request timeout (408) and a
# conflict such as a lock that timed out (409). Every other 4xx is the request's own fault.
RETRIED_4XX = frozenset({408, 409})


class LlmProvider(abc.ABC):
    """One provider's SDK behind a normalised request/response; raises ``ProviderError``s."""

    name: str

    @abc.abstractmethod
    async def complete(self, request: LlmRequest) -> ProviderResponse: ...

    @abc.abstractmethod
    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        """The same call, streamed: ``on_text`` gets the answer's text as it comes; the response is ``complete``'s.

        The answer's text is its content, or for a structured answer its JSON; the arguments of
        ordinary tool calls are not text and arrive only in the response. A stream that breaks
        raises the same ``ProviderError``s as ``complete``.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the SDK's connections."""


def sdk(name: str) -> ModuleType:
    """A provider SDK's module, imported on first use (``warm_up`` does it early, off the loop)."""
    return importlib.import_module(name)


async def warm_up() -> None:
    """Import the SDKs in a worker thread once the service serves, so the first call is not slowed."""
    for name in ("openai", "anthropic"):
        await asyncio.to_thread(importlib.import_module, name)
