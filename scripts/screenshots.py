#!/usr/bin/env python3
"""Regenerate screenshots/<n>-<name>.svg: one per TUI screen, from the real app.

Deterministic: a fake service answering with the lab captures
(tests/fixtures/ui), a frozen clock, no background polling.

    .venv/bin/python scripts/screenshots.py [--size 120x40] [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ui.scenes import SCENES, prepare, scene_app  # noqa: E402  (needs the path above)


async def shoot(name: str, keys: tuple[str, ...], size: tuple[int, int], out: Path) -> Path:
    app = scene_app(name)
    async with app.run_test(size=size) as pilot:
        await prepare(keys)(pilot)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(120, 40), help="terminal size, e.g. 120x40")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, keys in SCENES:
        path = asyncio.run(shoot(name, keys, args.size, args.out))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
