"""Where the bundled task data and split files live inside the installed package."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
SYMBENCH_DIR = ASSETS_DIR / "symbench"
BBH_DIR = ASSETS_DIR / "bbh"
SPLITS_DIR = ASSETS_DIR / "splits"
