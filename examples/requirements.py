"""``python examples/requirements.py EXTRA...``: what the package needs with those extras, one requirement a line.

Read from setup.cfg with the standard library alone (it runs before any venv
exists), so that ``make demo`` installs the demo's few packages without
building the package: ``python -m examples.flask_app``, run from the checkout,
imports ``hr_middleware`` from there.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

__all__ = ["requirements"]

SETUP_CFG = Path(__file__).resolve().parent.parent / "setup.cfg"


def requirements(*extras: str) -> list[str]:
    """``install_requires`` and the requirements of each of *extras*, in order, without repeats."""
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    sections = [config["options"]["install_requires"]]
    sections += [config["options.extras_require"][extra] for extra in extras]
    found: list[str] = []
    for line in "\n".join(sections).splitlines():
        line = line.strip()  # noqa: PLW2901 - the same line, trimmed
        if line and not line.startswith("#") and line not in found:
            found.append(line)
    return found


if __name__ == "__main__":
    print("\n".join(requirements(*sys.argv[1:])))
