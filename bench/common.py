"""What every benchmark script shares."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path | None, result: dict) -> None:
    """Write the benchmark's result as JSON to `path` (if given) and say where."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
