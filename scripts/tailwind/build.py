"""Build supportchat_app/static/tailwind.css with Tailwind's official CLI (``@tailwindcss/cli``).

Usage: ``uv run python scripts/tailwind/build.py`` writes the stylesheet; ``--check`` only says whether the committed
one is what the CLI makes from the sources now (exit 1 if not). The CLI comes from npm at the version pinned in this
folder's package.json and package-lock.json (``npm ci`` here the first time, as tests/js does), the version of the
Tailwind compiler NiceGUI's browser runtime carries (tests/test_tailwind_css.py holds the two to the same version).

Why a script of our own: the CLI is one command, but which sources it reads (input.css) and where the result goes
are the app's; NiceGUI's page no longer compiles Tailwind (``ui.run(tailwind=False)``, supportchat_app/styles.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INPUT = HERE / "input.css"
OUTPUT = ROOT / "supportchat_app" / "static" / "tailwind.css"
CLI = HERE / "node_modules" / "@tailwindcss" / "cli" / "dist" / "index.mjs"


def ensure_cli() -> list[str]:
    """The command that runs the pinned CLI, installing it from the lockfile when it is missing."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is needed (Node 20; see .ci/run)")
    if not CLI.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install Tailwind's CLI (scripts/tailwind/package-lock.json)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=300)
    return [node, str(CLI)]


def build() -> str:
    """The stylesheet the CLI makes from the app's sources now."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "tailwind.css"
        run = subprocess.run(
            [*ensure_cli(), "--input", str(INPUT), "--output", str(out)],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if run.returncode != 0:
            raise SystemExit(f"Tailwind's CLI failed ({run.returncode}):\n{run.stderr}")
        return out.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed stylesheet, write nothing")
    args = parser.parse_args(argv)
    made = build()
    if args.check:
        if OUTPUT.is_file() and OUTPUT.read_text(encoding="utf-8") == made:
            print(f"{OUTPUT.relative_to(ROOT)} is up to date")
            return 0
        print(f"{OUTPUT.relative_to(ROOT)} differs from what the sources make: run scripts/tailwind/build.py")
        return 1
    OUTPUT.write_text(made, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(made.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
