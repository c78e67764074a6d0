"""`python -m supportchat_app` and the frozen build's entry point (build.spec)."""

import multiprocessing

if __name__ == "__main__":
    # first thing in a frozen build: child processes (the native window) must not re-run the app
    multiprocessing.freeze_support()
    from supportchat_app.cli import main

    raise SystemExit(main())
