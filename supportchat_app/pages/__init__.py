"""Pages: each module exposes `create()`, which registers its routes."""
