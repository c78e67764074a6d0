"""The committed Tailwind stylesheet (supportchat_app/static/tailwind.css) is what Tailwind's CLI makes from the app's
sources now, and the CLI is the compiler NiceGUI's in-page runtime was: a class added to the code without running
scripts/tailwind/build.py, or a NiceGUI upgrade that moves Tailwind, fails here. (Which classes the pages show and
whether the file styles them all: tests/test_browser_tailwind.py.)
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import nicegui
import pytest

from supportchat_app import styles

ROOT = Path(__file__).resolve().parents[1]
TAILWIND = ROOT / "scripts" / "tailwind"
RUNTIME = Path(nicegui.__file__).parent / "static" / "tailwindcss.min.js"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tailwind_build", TAILWIND / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime_version() -> str:
    found = re.match(r'"use strict";\(\(\)=>\{var \w+="(\d+\.\d+\.\d+)"', RUNTIME.read_text()[:200])
    assert found is not None, "NiceGUI's Tailwind runtime no longer starts with its version"
    return found.group(1)


def test_the_cli_is_the_compiler_nicegui_ships() -> None:
    version = runtime_version()
    pinned = json.loads((TAILWIND / "package.json").read_text())["dependencies"]
    assert pinned == {"@tailwindcss/cli": version, "tailwindcss": version}
    lock = json.loads((TAILWIND / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@tailwindcss/cli"]["version"] == version
    assert lock["node_modules/tailwindcss"]["version"] == version
    assert styles.CSS_FILE.read_text().startswith(f"/*! tailwindcss v{version} ")


@pytest.mark.node
def test_committed_stylesheet_is_what_the_sources_make() -> None:
    made = builder().build()
    assert made == styles.CSS_FILE.read_text(encoding="utf-8"), "run: uv run python scripts/tailwind/build.py"


def test_the_stylesheet_is_served_by_its_digest() -> None:
    """A changed file is a new address, so the year-long cache never serves an old build."""
    first = styles.url()
    assert re.fullmatch(r"/_sc/tailwind-[0-9a-f]{16}\.css", first)
    assert first == styles.url()
