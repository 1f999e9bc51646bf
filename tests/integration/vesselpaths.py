"""Where the vessel binaries under test are, for every test folder.

A plain module rather than conftest.py: each folder has a conftest.py of its
own, which shadows that name, while pytest.ini's pythonpath makes this module
importable from everywhere."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def vessel_path() -> Path:
    """$VESSEL_BIN, else the build tests/run makes, else build/."""
    env = os.environ.get("VESSEL_BIN")
    if env:
        return Path(env)
    for cand in (ROOT / "build-test/src/cmd/vessel", ROOT / "build/src/cmd/vessel"):
        if cand.exists():
            return cand
    pytest.exit("vessel is not built: run tests/run (or set VESSEL_BIN)", returncode=2)
