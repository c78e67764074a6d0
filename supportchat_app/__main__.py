"""`python -m supportchat_app` and the frozen build's entry point: freeze_support first, then the CLI."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the native window runs in a spawned process; it must not re-run the app
    from supportchat_app.cli import main

    raise SystemExit(main())
