"""klaviyo-tui's tests, one folder per tier (README: Development)."""
