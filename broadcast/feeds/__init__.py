"""Pure parsing of polled water-level and warning feeds."""
