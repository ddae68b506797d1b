"""HTTP/2 client tests: `async def` tests run on a fresh event loop each, against loopback servers."""

import asyncio
import gc
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http2.certificates import LoopbackPki, make_pki

# No test here needs more; a hang fails the test instead of stalling the suite.
TEST_TIMEOUT_S = 30.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run coroutine tests with asyncio.run (the suite needs no asyncio plugin)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**arguments), TEST_TIMEOUT_S))
    return True


@pytest.fixture(autouse=True)
def _leaks_surface_in_the_test_that_made_them() -> Iterator[None]:
    """Collect garbage after each test, so an unclosed socket warns in the test that leaked it."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    """A throwaway CA and a certificate for 127.0.0.1, shared by the whole session."""
    directory: Path = tmp_path_factory.mktemp("pki")
    return make_pki(directory)
