"""Pure functions and single modules: no server, no terminal."""
