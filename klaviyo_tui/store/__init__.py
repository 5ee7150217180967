"""Where state lives: the TOML config, API keys, run history, file locations."""
