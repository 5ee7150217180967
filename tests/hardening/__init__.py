"""What it survives: hostile input, damaged state, faults, crashes (README table)."""
