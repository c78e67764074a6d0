"""Realtime tests: postgres_changes with RLS, broadcast, presence and protocol edge cases, official clients."""
