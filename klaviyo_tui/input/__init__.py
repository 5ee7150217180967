"""From source rows to request bodies: sources, filters, validation, dedupe, packing."""
