"""Print the service's dependencies, one a line, from `pyproject.toml` (the project's own and
those of its `http` and `gcp` extras): what the image installs in a layer of its own, before
the code, so that a change of code alone reuses it. Python 3.11's standard library only."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

EXTRAS = ("http", "gcp")


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted: list[str] = list(project["dependencies"])
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    return wanted


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pyproject.toml")
    print("\n".join(requirements(source)))
