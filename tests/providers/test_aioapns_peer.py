"""The bench's aioapns side: the flow-control credit it adds runs, and without it aioapns would stall.

Every APNs error comes with a JSON body; aioapns never returns the body's flow-control credit, so after
~65 KB of error bodies (about 2,500 answers) its connection can receive nothing more. The comparison is
only fair if aioapns gets through an error-heavy run, so the bench gives the credit back.
"""

import asyncio

from bench.sides import credit_aioapns_flow_control, send_with_aioapns
from dev.emulators import ApnsEmulator
from tests.providers.conftest import KEY_ID, TEAM, TOPIC

ERRORS = 3_000  # bodies of ~26 bytes each: past the 65,535-byte window aioapns would never reopen


def test_aioapns_gets_through_more_error_bodies_than_its_window_holds(apns: ApnsEmulator):
    key = apns.create_signing_key(TEAM, KEY_ID, [TOPIC])
    dead = [f"{i:064x}" for i in range(ERRORS)]
    apns.mark_dead(dead)
    config = {"apns": {"url": apns.url, "key": key.to_json()}, "ca_path": apns.ca_path, "in_flight": 500}
    credited = credit_aioapns_flow_control()
    before = credited()

    outcomes = asyncio.run(asyncio.wait_for(send_with_aioapns(config, [*dead, "ab" * 32]), timeout=60))

    assert outcomes == {"Unregistered": ERRORS, "delivered": 1}
    assert credited() - before >= ERRORS  # the credit was given where aioapns reads each body
