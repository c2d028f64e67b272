"""``crucible healthcheck TARGET``: exit 0 when a Crucible process answers healthy (container health checks).

TARGET is either ``HOST:PORT`` of a gRPC service, asked through the standard health service
(``grpc.health.v1``: healthy only when SERVING), or an ``http://`` / ``https://`` URL that must answer
200 (the gateway's ``/healthz``, which is 200 only when every service is SERVING; the emulator's).
One line says what was found; the exit code is 0 (healthy) or 1 (not, or no answer in time).
With ``CRUCIBLE_TLS_*`` set, the gRPC check speaks TLS as every Crucible client does
(``crucible_common.tls``): the server's certificate must name the host dialled.

Compose runs this every few seconds in every container, so it loads only what it needs: grpc or
urllib, not the rest of the CLI (``crucible_cli.launcher`` routes ``crucible healthcheck`` here).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated

import typer

HTTP_SCHEMES = ("http://", "https://")


def check(target: str, *, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """Whether ``target`` is healthy, and what it answered (or why there was no answer)."""
    if target.startswith(HTTP_SCHEMES):
        return _http(target, timeout)
    return _grpc(target, service, timeout)


def _grpc(address: str, service: str, timeout: float) -> tuple[bool, str]:
    # Imported here: every other `crucible` command would pay for grpc's import otherwise.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from crucible_common.settings import Settings
    from crucible_common.tls import Tls, TlsMisconfigured

    try:
        tls = Tls.from_settings(Settings())
    except TlsMisconfigured as exc:
        return False, f"TLS misconfigured: {exc}"
    channel = grpc.secure_channel(address, tls.channel_credentials()) if tls else grpc.insecure_channel(address)
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as exc:
            # What the stub raises is also a grpc.Call, which carries the status code and details.
            if isinstance(exc, grpc.Call):
                return False, f"{exc.code().name}: {exc.details()}"
            return False, repr(exc)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, status


def _http(url: str, timeout: float) -> tuple[bool, str]:
    # The standard library's client: httpx alone would double the check's start-up time.
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return status == 200, f"HTTP {status}"


def healthcheck(
    target: Annotated[
        str, typer.Argument(help="HOST:PORT of a gRPC service, or an http(s):// URL that must answer 200.")
    ],
    service: Annotated[
        str, typer.Option(help="The gRPC service to ask about; empty: the whole server (the default).")
    ] = "",
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the answer.")] = 3.0,
) -> None:
    """Exit 0 when TARGET answers healthy, 1 otherwise: for container health checks."""
    healthy, detail = check(target, service=service, timeout=timeout)
    typer.echo(f"{target}: {detail}", err=not healthy)
    raise typer.Exit(0 if healthy else 1)


def run(args: list[str]) -> None:
    """``crucible healthcheck ARGS`` on its own, without building the whole command tree."""
    command = typer.Typer(add_completion=False)
    command.command()(healthcheck)
    command(args=args, prog_name="crucible healthcheck")
