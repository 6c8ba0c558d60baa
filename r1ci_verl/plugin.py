"""verl plugin entry point (filled in later)."""
