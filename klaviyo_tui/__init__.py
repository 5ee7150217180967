"""klaviyo-tui: get customer segments from local data into Klaviyo lists."""

__version__ = "0.1.0"
