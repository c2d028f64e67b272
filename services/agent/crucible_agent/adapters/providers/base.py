"""The one interface every model provider adapter implements."""

from __future__ import annotations

import abc

from crucible_agent.domain.model import LlmRequest, ProviderResponse


class LlmProvider(abc.ABC):
    """One provider's SDK behind a normalised request/response; raises ``ProviderError``s."""

    name: str

    @abc.abstractmethod
    async def complete(self, request: LlmRequest) -> ProviderResponse: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the SDK's connections."""
