"""TLS between Crucible's processes: off unless ``CRUCIBLE_TLS_*`` name the files.

With TLS on, every gRPC server (the four services) presents ``tls_cert_file`` / ``tls_key_file``
and every client (the services calling each other, the gateway, the supervisor's and
``crucible healthcheck``'s health checks) trusts only ``tls_ca_file``; with
``tls_require_client_cert`` the servers also ask each client for a certificate signed by that CA
(mutual TLS), so nothing without one can call a service. One certificate per process (or one for
all) must name, in its subject alternative names, the host part of the address clients dial:
``127.0.0.1`` on one machine, the Service's DNS name on Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:  # settings import this module's users, not the other way round
    from crucible_common.settings import Settings


class TlsMisconfigured(ValueError):
    """The TLS settings name a file that cannot be read, or only part of what TLS needs."""


@dataclass(frozen=True)
class Tls:
    ca: bytes
    cert: bytes
    key: bytes
    require_client_cert: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Tls | None:
        """None when TLS is off (no ``CRUCIBLE_TLS_*`` file set); all three files are needed to turn it on."""
        files = {
            "CRUCIBLE_TLS_CA_FILE": settings.tls_ca_file,
            "CRUCIBLE_TLS_CERT_FILE": settings.tls_cert_file,
            "CRUCIBLE_TLS_KEY_FILE": settings.tls_key_file,
        }
        given = {name: path for name, path in files.items() if path is not None}
        if not given:
            return None
        missing = sorted(set(files) - set(given))
        if missing:
            raise TlsMisconfigured(f"TLS needs {', '.join(sorted(files))}; {', '.join(missing)} not set")
        ca, cert, key = (_read(name, path) for name, path in given.items())
        return cls(ca, cert, key, settings.tls_require_client_cert)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca if self.require_client_cert else None,
            require_client_auth=self.require_client_cert,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        # The client presents its certificate too: harmless without mutual TLS, needed with it.
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsMisconfigured(f"{name}: cannot read {path}: {exc.strerror}") from exc
