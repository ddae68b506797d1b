"""Loopback emulators of APNs, FCM HTTP v1, a Web Push service and a webhook receiver, over TLS on 127.0.0.1.

Used by the tests, the local stack and the benchmark. Each emulator is an asyncio HTTP/2 + HTTP/1.1 server
in its own thread, with fault knobs, a ledger of what it accepted, and an admin API under /_emulator/.
"""

from dev.emulators.apns import ApnsEmulator, ApnsSigningKey
from dev.emulators.emulator import DeadMark, Emulator
from dev.emulators.faults import FaultDecision, FaultKind, Faults, FaultSettings
from dev.emulators.fcm import FcmEmulator
from dev.emulators.ledger import Ledger, LedgerEntry
from dev.emulators.server import EmulatorRequest, EmulatorResponse, EmulatorServer
from dev.emulators.suite import EmulatorSuite
from dev.emulators.tls import CertificateAuthority, ClientCertificate
from dev.emulators.webhook import WebhookEmulator
from dev.emulators.webpush import WebPushEmulator

__all__ = [
    "ApnsEmulator",
    "ApnsSigningKey",
    "CertificateAuthority",
    "ClientCertificate",
    "DeadMark",
    "Emulator",
    "EmulatorRequest",
    "EmulatorResponse",
    "EmulatorServer",
    "EmulatorSuite",
    "FaultDecision",
    "FaultKind",
    "FaultSettings",
    "Faults",
    "FcmEmulator",
    "Ledger",
    "LedgerEntry",
    "WebPushEmulator",
    "WebhookEmulator",
]
