import pytest

from push_core.models import MessageContent, Publication, PublicationStatus


def _publication(**counters: int) -> Publication:
    return Publication(app_id="A", publication_id="P", content=MessageContent(body="b"), created_at=0, **counters)


@pytest.mark.parametrize(
    ("counters", "status"),
    [
        ({"expand_jobs": 4}, PublicationStatus.QUEUED),
        ({"expand_jobs": 4, "expand_jobs_done": 1, "total": 3, "passed": 3}, PublicationStatus.EXPANDING),
        ({"expand_jobs": 1, "expand_jobs_done": 1, "total": 3, "passed": 1}, PublicationStatus.DELIVERING),
        (
            {"expand_jobs": 1, "expand_jobs_done": 1, "total": 3, "passed": 2, "failed": 1},
            PublicationStatus.COMPLETED,
        ),
        ({"expand_jobs": 2, "expand_jobs_done": 2}, PublicationStatus.COMPLETED),
    ],
)
def test_status_is_derived_from_counters(counters, status):
    assert _publication(**counters).status is status


def test_pending_is_what_is_neither_passed_nor_failed():
    assert _publication(total=10, passed=6, failed=1).pending == 3
