"""`python -m localbase` — the same as `supportchat stack`, without the app's dependencies."""

from localbase.cli import main

raise SystemExit(main())
