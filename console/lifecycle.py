"""`async with` for anything that has `start()` and `stop()`."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound="StartStop")


class StartStop:
    """`async with thing:` starts it and always stops it; a start that fails half-way is undone
    (stop() must therefore cope with a partly started thing)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: T) -> T:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()
