"""localbase package."""
