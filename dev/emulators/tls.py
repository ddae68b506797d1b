"""A throwaway certificate authority for the loopback emulators: server and client certificates, SSL contexts."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for any test run or local session, short enough that nobody mistakes these for real ones.
_VALIDITY = datetime.timedelta(days=30)
# Clocks of the machines that run the tests may lag a little behind the one that issued the certificate.
_BACKDATE = datetime.timedelta(minutes=5)
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")
# Apple's push certificates name the app in the subject's UID and in the CN after this prefix.
APPLE_CN_PREFIX = "Apple Push Services: "


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate issued by the emulator CA; the files are what ssl.load_cert_chain reads."""

    topic: str
    cert_pem: str
    key_pem: str
    cert_path: str
    key_path: str


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CertificateAuthority:
    """A CA generated at construction, with a localhost server certificate, all written to a temporary dir.

    Clients trust `ca_path` explicitly; nothing is added to any system trust store.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="pushlane-emulators-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._issued = 0
        now = datetime.datetime.now(datetime.UTC)
        self._not_before = now - _BACKDATE
        self._not_after = now + _VALIDITY

        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushlane emulators throwaway CA")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key())
        self._ca_cert = (
            self._builder(ca_name, self._ca_key.public_key(), issuer=ca_name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_path = str(self.directory / "ca.pem")
        Path(self.ca_path).write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))

        server_key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.DNSName(name) for name in SERVER_NAMES] + [
            x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES
        ]
        server_cert = (
            self._leaf_builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), server_key.public_key()
            )
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.server_cert_path = str(self.directory / "server.pem")
        self.server_key_path = str(self.directory / "server-key.pem")
        Path(self.server_cert_path).write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        Path(self.server_key_path).write_bytes(_pem_key(server_key))

    @property
    def ca_certificate(self) -> x509.Certificate:
        """The CA certificate (what a verifying peer must chain to)."""
        return self._ca_cert

    @property
    def ca_pem(self) -> str:
        """The CA certificate as PEM text."""
        return self._ca_cert.public_bytes(serialization.Encoding.PEM).decode()

    def _builder(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, *, issuer: x509.Name
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
        )

    def _leaf_builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            self._builder(subject, public_key, issuer=self._ca_cert.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    def issue_client_certificate(self, topic: str) -> ClientCertificate:
        """A client certificate naming `topic` the way Apple's push certificates do (subject UID and CN)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.USER_ID, topic),
                x509.NameAttribute(NameOID.COMMON_NAME, APPLE_CN_PREFIX + topic),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "pushlane emulator"),
            ]
        )
        cert = (
            self._leaf_builder(subject, key.public_key())
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        with self._lock:
            self._issued += 1
            serial = self._issued
        cert_path = self.directory / f"client-{serial}.pem"
        key_path = self.directory / f"client-{serial}-key.pem"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _pem_key(key)
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        return ClientCertificate(topic, cert_pem.decode(), key_pem.decode(), str(cert_path), str(key_path))

    def server_context(self, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
        """A server context: this CA's localhost certificate, the ALPN list, client certificates requested."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        context.set_alpn_protocols(list(alpn))
        # Requested, not required: APNs certificate auth presents one, every other client does not.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=self.ca_path)
        # RFC 7540 9.2.2 blacklists non-AEAD suites for h2; TLS 1.3 and these ECDHE-GCM ones are all fine.
        context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        return context

    def client_context(
        self, alpn: tuple[str, ...] = ("h2", "http/1.1"), certificate: ClientCertificate | None = None
    ) -> ssl.SSLContext:
        """A client context trusting only this CA, optionally presenting a client certificate."""
        context = ssl.create_default_context(cafile=self.ca_path)
        context.set_alpn_protocols(list(alpn))
        if certificate is not None:
            context.load_cert_chain(certificate.cert_path, certificate.key_path)
        return context

    def cleanup(self) -> None:
        """Remove the temporary directory (only if this CA created it)."""
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def topic_from_certificate(certificate: x509.Certificate) -> str | None:
    """The bundle id an Apple-style push certificate is for: its subject UID, else the CN after the prefix."""
    uids = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    if uids:
        return str(uids[0].value)
    cns = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns and str(cns[0].value).startswith(APPLE_CN_PREFIX):
        return str(cns[0].value)[len(APPLE_CN_PREFIX) :]
    return None
