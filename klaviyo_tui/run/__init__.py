"""Running an export: the engine, its upload half, locks, rejects files, schedules."""
