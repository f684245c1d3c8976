"""The fake's list of minted ids, which says why it is empty when a test reads an id that was never minted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, SupportsIndex, overload

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = ["Minted", "NothingMintedError"]


class NothingMintedError(AssertionError, IndexError):
    """``fake.minted[i]`` when the fake minted fewer ids: a test's failed expectation, with the likely cause.

    An :class:`AssertionError` (pytest reports it as a failed expectation, with its
    message) and an :class:`IndexError` (what indexing a short list raises).
    """


class Minted(list[str]):
    """The ids the fake handed out, in order: a list, whose missing index says why nothing was minted."""

    def __init__(self, fake: FakeHelloRetail) -> None:
        super().__init__()
        self._fake = fake

    @overload
    def __getitem__(self, index: SupportsIndex) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: Any) -> Any:
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        try:
            return super().__getitem__(index)
        except IndexError:
            raise NothingMintedError(self._explain(index)) from None

    def _explain(self, index: int) -> str:
        """Why ``minted[index]`` does not exist: the mints that reached the fake, or that none did."""
        fake = self._fake
        attempts = len(fake.mint_requests())
        said = f"FakeHelloRetail.minted[{index}]: the fake minted {len(self)} id(s)"
        if attempts > len(self):
            return (
                f"{said}; {attempts - len(self)} of the {attempts} mint request(s) that reached it failed as told "
                f"(mode={fake.mode.name}, fail_every={fake.fail_every})"
            )
        return (
            f"{said}, and no other mint request reached it. Only a person's page navigation mints: "
            "a test client sends no browser headers, so pass headers=hr_middleware.testing.BROWSER_HEADERS "
            "(in pytest, the browser_headers fixture); a request that already carries an id cookie, a POST, a bot's "
            "User-Agent or your mint_when also mint nothing. Check too that the middleware's api_url is "
            f"{fake.url} (fake.settings() sets it). The hr_middleware logger says why at DEBUG."
        )

    def __reduce__(self) -> Any:  # a copy or pickle is a plain list (the fake does not travel)
        return (list, (list(self),))
