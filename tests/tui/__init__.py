"""The Textual app: Pilot behaviour tests and SVG snapshots."""
