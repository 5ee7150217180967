"""Sync modes: incremental runs, mirror with safe removals, subscribe with consent (see runner)."""
