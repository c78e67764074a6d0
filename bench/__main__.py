"""`uv run python -m bench [NAME ...]`: run all or the named benchmarks."""

import sys

from bench.harness import main

raise SystemExit(main(sys.argv[1:]))
