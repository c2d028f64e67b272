"""The one interface every model provider adapter implements."""

from __future__ import annotations

import abc
import asyncio
import importlib
from types import ModuleType

from crucible_agent.domain.model import LlmRequest, ProviderResponse


class LlmProvider(abc.ABC):
    """One provider's SDK behind a normalised request/response; raises ``ProviderError``s."""

    name: str

    @abc.abstractmethod
    async def complete(self, request: LlmRequest) -> ProviderResponse: ...

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
