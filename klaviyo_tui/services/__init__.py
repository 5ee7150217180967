"""The service layer: every operation the two front ends offer, in one place.

The CLI and the TUI translate user input into these calls and the results into lines or screens;
they never reach past this layer into the client, the engine, the history store or the keyring.
Functions that block (keyring, SQLite, files) are plain functions, for a thread worker or
`asyncio.to_thread`; network operations are async.
"""
