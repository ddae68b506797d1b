"""The ledger: every request an emulator accepted, and a count of every answer it gave, readable from any thread.

Indexes grow for the life of the emulator (a reset empties the ledger but never reuses an index), so a reader
polling with `since=<next>` never sees an entry twice. A ledger made with `keep` holds only the newest `keep`
entries (the local stack's emulators run as long as `make run` does); counts are never trimmed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

DELIVERED = "delivered"
VALIDATED = "validated"  # FCM validate_only: checked and accepted, never delivered


@dataclass(frozen=True)
class LedgerEntry:
    """One accepted request. `data` holds the provider-specific facts (see each emulator's docstring)."""

    index: int
    at: float
    emulator: str
    method: str
    path: str
    protocol: str
    status: int
    outcome: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the admin API's shape)."""
        return {
            "index": self.index,
            "at": self.at,
            "emulator": self.emulator,
            "method": self.method,
            "path": self.path,
            "protocol": self.protocol,
            "status": self.status,
            "outcome": self.outcome,
            "data": self.data,
        }


def answer_key(status: int, reason: str = "") -> str:
    """How an answer is counted: "200", "410 Unregistered"; "reset" and "timeout" for answers never given."""
    if status == 0:
        return reason
    return f"{status} {reason}" if reason else str(status)


class Ledger:
    """Thread-safe record of accepted requests plus counts of answers by status and reason."""

    def __init__(self, emulator: str, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"a ledger keeps at least one entry, not {keep}")
        self.emulator = emulator
        self.keep = keep
        self._entries: list[LedgerEntry] = []
        self._first_index = 0
        self._recorded = 0  # entries since the last reset, trimmed ones included
        self._counts: Counter[str] = Counter()
        self._changed = threading.Condition()

    def record(
        self,
        *,
        method: str,
        path: str,
        protocol: str,
        status: int,
        data: dict[str, Any],
        outcome: str = DELIVERED,
    ) -> LedgerEntry:
        """Append an accepted request; returns its entry."""
        with self._changed:
            entry = LedgerEntry(
                self._first_index + len(self._entries),
                time.time(),
                self.emulator,
                method,
                path,
                protocol,
                status,
                outcome,
                data,
            )
            self._entries.append(entry)
            self._recorded += 1
            # Trim in steps of a tenth, so a bounded ledger does not copy its list on every request.
            if self.keep is not None and len(self._entries) > self.keep + self.keep // 10:
                dropped = len(self._entries) - self.keep
                del self._entries[:dropped]
                self._first_index += dropped
            self._changed.notify_all()
        return entry

    def count(self, key: str) -> None:
        """Count one answer under `key` (see answer_key)."""
        with self._changed:
            self._counts[key] += 1
            self._changed.notify_all()

    def entries(self, since: int = 0, outcome: str | None = None) -> list[LedgerEntry]:
        """Entries with index >= since, oldest first; only those with `outcome` if given."""
        with self._changed:
            selected = self._entries[max(0, since - self._first_index) :]
        if outcome is not None:
            selected = [entry for entry in selected if entry.outcome == outcome]
        return selected

    def delivered(self) -> list[LedgerEntry]:
        """Entries that count as delivered (FCM validate_only requests excluded)."""
        return self.entries(outcome=DELIVERED)

    @property
    def next_index(self) -> int:
        """The index the next entry will get (what a poller passes as `since` next time)."""
        with self._changed:
            return self._first_index + len(self._entries)

    def counts(self) -> dict[str, int]:
        """Answers given so far, by answer_key."""
        with self._changed:
            return dict(self._counts)

    def counts_by_status(self) -> dict[str, int]:
        """Answers given so far, by status code alone ("reset"/"timeout" kept as they are)."""
        totals: Counter[str] = Counter()
        for key, value in self.counts().items():
            totals[key.split(" ", 1)[0]] += value
        return dict(totals)

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least `count` entries were recorded since the last reset; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._recorded >= count, timeout)

    def wait_for_answers(self, count: int, timeout: float) -> bool:
        """Block until at least `count` answers of any kind were counted; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: sum(self._counts.values()) >= count, timeout)

    def reset(self) -> None:
        """Forget entries and counts; indexes keep growing."""
        with self._changed:
            self._first_index += len(self._entries)
            self._entries = []
            self._recorded = 0
            self._counts.clear()
            self._changed.notify_all()

    def to_json(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The admin API's view: up to `limit` entries from `since`, the index to ask for next, the counts."""
        with self._changed:
            start = max(0, since - self._first_index)
            entries = self._entries[start : None if limit is None else start + limit]
            next_index = self._first_index + min(start, len(self._entries)) + len(entries)
            counts = dict(self._counts)
        return {
            "emulator": self.emulator,
            "entries": [entry.to_json() for entry in entries],
            "next": next_index,
            "counts": counts,
        }
