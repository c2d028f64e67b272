"""TLS between the processes (crucible_common.tls): a service over TLS answers a client that trusts
its CA, and refuses plaintext, a client trusting another CA, and (with mutual TLS) a client without
a certificate; settings that name only part of what TLS needs are refused with the missing names."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crucible_common.clients import open_channel, service_channel
from crucible_common.grpc_server import create_server, set_serving
from crucible_common.settings import Settings
from crucible_common.tls import Tls, TlsMisconfigured

pytestmark = pytest.mark.integration


def _pki(directory: Path, label: str) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it, as PEM files."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "ca": directory / f"{label}-ca.pem",
        "cert": directory / f"{label}-cert.pem",
        "key": directory / f"{label}-key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    leaf.cert_chain_pems[0].write_to_path(str(files["cert"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    return files


def _settings(files: dict[str, Path], *, mutual: bool = False) -> Settings:
    return Settings(
        tls_ca_file=files["ca"], tls_cert_file=files["cert"], tls_key_file=files["key"], tls_require_client_cert=mutual
    )


async def _serving(channel: grpc.aio.Channel) -> bool | str:
    """SERVING, or the status code of the refusal."""
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.aio.AioRpcError as exc:
        code: str = exc.code().name
        return code
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def _server(settings: Settings) -> tuple[grpc.aio.Server, str]:
    server, port, health = create_server("127.0.0.1:0", [], domain="test.crucible", tls=Tls.from_settings(settings))
    await server.start()
    await set_serving(health, [])
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def pki(tmp_path: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    return _pki(tmp_path, "ours"), _pki(tmp_path, "theirs")


async def test_a_service_over_tls_answers_only_clients_that_trust_its_ca(
    pki: tuple[dict[str, Path], dict[str, Path]],
) -> None:
    ours, theirs = pki
    server, address = await _server(_settings(ours))
    try:
        async with service_channel(address, _settings(ours)) as trusted:
            answered = await _serving(trusted)
        async with open_channel(address) as plaintext:
            refused_plaintext = await _serving(plaintext)
        async with service_channel(address, _settings(theirs)) as stranger:
            refused_stranger = await _serving(stranger)
    finally:
        await server.stop(None)

    assert answered is True
    assert refused_plaintext == "UNAVAILABLE"
    assert refused_stranger == "UNAVAILABLE"


async def test_with_mutual_tls_a_client_needs_a_certificate_of_the_ca(
    pki: tuple[dict[str, Path], dict[str, Path]],
) -> None:
    ours, theirs = pki
    server, address = await _server(_settings(ours, mutual=True))
    try:
        async with service_channel(address, _settings(ours)) as trusted:
            answered = await _serving(trusted)
        # Trusts the server, but presents a certificate another CA signed.
        foreign = Settings(tls_ca_file=ours["ca"], tls_cert_file=theirs["cert"], tls_key_file=theirs["key"])
        async with service_channel(address, foreign) as stranger:
            refused = await _serving(stranger)
    finally:
        await server.stop(None)

    assert answered is True
    assert refused == "UNAVAILABLE"


def test_tls_is_off_without_files_and_refuses_half_a_configuration(tmp_path: Path) -> None:
    assert Tls.from_settings(Settings()) is None
    with pytest.raises(TlsMisconfigured, match="CRUCIBLE_TLS_CERT_FILE, CRUCIBLE_TLS_KEY_FILE not set"):
        Tls.from_settings(Settings(tls_ca_file=tmp_path / "ca.pem"))
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsMisconfigured, match="CRUCIBLE_TLS_CA_FILE: cannot read"):
        Tls.from_settings(Settings(tls_ca_file=missing, tls_cert_file=missing, tls_key_file=missing))
