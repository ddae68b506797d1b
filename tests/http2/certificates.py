"""Certificates for the HTTP/2 tests: the emulators' throwaway CA (and one unrelated CA) as files on disk."""

import ssl
from dataclasses import dataclass
from pathlib import Path

from dev.emulators.tls import CertificateAuthority


@dataclass(frozen=True)
class LoopbackPki:
    """PEM files on disk: a trusted CA, server and client certificates it signed, and an unrelated CA."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path

    def client_context(self, *, trust_other_ca: bool = False, with_certificate: bool = False) -> ssl.SSLContext:
        """A verifying client context trusting our CA (or only the unrelated one), optionally
        presenting the client certificate (as APNs certificate authentication does)."""
        context = ssl.create_default_context(cafile=str(self.other_ca_cert if trust_other_ca else self.ca_cert))
        if with_certificate:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def server_context(
        self, alpn: list[str] | None = None, *, require_client_certificate: bool = False
    ) -> ssl.SSLContext:
        """A server context with our certificate, offering the given ALPN protocols (default h2)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        context.set_alpn_protocols(["h2"] if alpn is None else alpn)
        if require_client_certificate:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.ca_cert))
        return context


def make_pki(directory: Path) -> LoopbackPki:
    """A CA with a server certificate for 127.0.0.1/localhost and a client certificate, and an unrelated CA,
    made by the same CertificateAuthority the emulators use."""
    ours = CertificateAuthority(str(directory / "ours"))
    other = CertificateAuthority(str(directory / "other"))
    client = ours.issue_client_certificate("pushlane sender")
    return LoopbackPki(
        ca_cert=Path(ours.ca_path),
        server_cert=Path(ours.server_cert_path),
        server_key=Path(ours.server_key_path),
        client_cert=Path(client.cert_path),
        client_key=Path(client.key_path),
        other_ca_cert=Path(other.ca_path),
    )
