"""A small client of the gateway's REST API, for the CLI."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    """The gateway answered with a problem body, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


def problem_text(problem: dict[str, Any]) -> str:
    """A problem body as a person reads it: ``404 RUN_NOT_FOUND: …``, then each field violation and
    each failed precondition (a blocked run's: what blocks it, and where)."""
    lines = [f"\n  {v.get('field')}: {v.get('description')}" for v in problem.get("field_violations", [])]
    lines += [
        f"\n  {v.get('type')} ({v.get('subject')}): {v.get('description')}"
        for v in problem.get("precondition_violations", [])
    ]
    return f"{problem.get('status', '')} {problem.get('reason', '')}: {problem.get('detail', '')}{''.join(lines)}"


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = (base_url or os.environ.get("CRUCIBLE_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("CRUCIBLE_API_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=self.headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the gateway at {self.base_url} ({exc}); is `make run` up?") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            message = problem_text({"detail": response.reason_phrase, **body, "status": response.status_code})
            raise ApiError(message, status=response.status_code, body=body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def raw(self, method: str, path: str) -> bytes:
        """A response body as bytes (artifact downloads)."""
        try:
            response = self._http.request(method, path)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the gateway at {self.base_url} ({exc})") from exc
        if response.status_code >= 400:
            raise ApiError(f"{response.status_code}: {response.text[:300]}", status=response.status_code)
        return response.content

    def close(self) -> None:
        self._http.close()
