"""The headless CLI: CliRunner, a pseudo-terminal, real subprocesses."""
