from collections.abc import Iterator

import pytest

from tests.integration.harness import LocalAws, local_aws


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    """One deployment per test module; tests isolate themselves by creating their own apps."""
    with local_aws() as deployed:
        yield deployed
