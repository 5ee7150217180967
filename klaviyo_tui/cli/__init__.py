"""The headless front end (click)."""
