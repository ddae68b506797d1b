import pytest

from push_core.models import MessageContent, Publication, PublicationStatus


def _publication(**counters: int) -> Publication:
    return Publication(app_id="A", publication_id="P", content=MessageContent(body="b"), created_at=0, **counters)


@pytest.mark.parametrize(
    ("counters", "status"),
    [
        # Nothing has happened yet
        ({"expand_jobs": 4}, PublicationStatus.QUEUED),
        # The first page registered its batches (their targets are in the total) but is not done
        ({"expand_jobs": 1, "delivery_batches": 2, "total": 6}, PublicationStatus.EXPANDING),
        # A shard's inline batch is delivered while other shards still expand
        (
            {"expand_jobs": 4, "expand_jobs_done": 1, "delivery_batches": 1, "delivery_batches_done": 1},
            PublicationStatus.EXPANDING,
        ),
        # Every page expanded, batches outstanding
        (
            {"expand_jobs": 3, "expand_jobs_done": 3, "delivery_batches": 5, "delivery_batches_done": 2, "total": 9}
            | {"passed": 4},
            PublicationStatus.DELIVERING,
        ),
        # A batch left its targets to a retry: registered in the same write that finished the batch
        (
            {"expand_jobs": 1, "expand_jobs_done": 1, "delivery_batches": 2, "delivery_batches_done": 1, "total": 3}
            | {"passed": 2},
            PublicationStatus.DELIVERING,
        ),
        # Outstanding batches keep it delivering whatever the counts say
        (
            {"expand_jobs": 1, "expand_jobs_done": 1, "delivery_batches": 1, "delivery_batches_done": 0},
            PublicationStatus.DELIVERING,
        ),
        (
            {"expand_jobs": 2, "expand_jobs_done": 2, "delivery_batches": 3, "delivery_batches_done": 3, "total": 3}
            | {"passed": 2, "failed": 1},
            PublicationStatus.COMPLETED,
        ),
        # An empty audience: every page done, no batch
        ({"expand_jobs": 2, "expand_jobs_done": 2}, PublicationStatus.COMPLETED),
    ],
)
def test_status_is_derived_from_the_counters_of_each_kind_of_job(counters, status):
    assert _publication(**counters).status is status


def test_pending_is_what_is_neither_passed_nor_failed():
    assert _publication(total=10, passed=6, failed=1).pending == 3
