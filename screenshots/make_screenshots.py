"""Make the README screenshots: `.venv/bin/python screenshots/make_screenshots.py`.

Drives the real app (scripted model, real tools, real history store) through the same scenarios
as the snapshot tests and saves one SVG per state in this folder.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.ui.harness import SIZE  # noqa: E402
from tests.ui.scenarios import SCENARIOS, freeze  # noqa: E402


async def capture(name: str) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        app, run_before = SCENARIOS[name](Path(tmp))
        async with app.run_test(size=SIZE) as pilot:
            await run_before(pilot)
            await pilot.pause()
            target = HERE / f"{name}.svg"
            app.save_screenshot(filename=target.name, path=str(HERE))
            app.controller.close()
        return target


def main() -> None:
    freeze()
    for name in SCENARIOS:
        print(asyncio.run(capture(name)))


if __name__ == "__main__":
    main()
