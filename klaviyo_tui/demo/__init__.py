"""`klaviyo-tui demo`: the app against an in-process sandbox with generated customers."""
