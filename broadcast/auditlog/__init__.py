"""Reading the audit log: filtered by who, what, incident and time, a page at a time or as CSV."""
