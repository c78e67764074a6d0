"""SupportChat desktop app: NiceGUI pages, the CLI entry point and the native window."""

__version__ = "0.1.0"
