"""Whole runs through the engine against the sandbox: rows in, confirmed states out."""
