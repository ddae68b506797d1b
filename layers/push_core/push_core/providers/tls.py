"""TLS contexts for provider connections: the system trust store, or an explicit CA (the loopback emulators)."""

import ssl
import tempfile
from functools import lru_cache


@lru_cache(maxsize=8)
def client_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying client context; with ca_bundle, only that CA is trusted (never verification off)."""
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_certificate_context(certificate_pem: str, key_pem: str, ca_bundle: str | None = None) -> ssl.SSLContext:
    """A context presenting a client certificate (APNs certificate-based auth)."""
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl only loads certificates from files; the temporary file lives just long enough to be read.
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as bundle:
        bundle.write(certificate_pem.strip() + "\n" + key_pem.strip() + "\n")
        bundle.flush()
        context.load_cert_chain(bundle.name)
    return context
