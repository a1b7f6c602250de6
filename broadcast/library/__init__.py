"""The message templates officers start an update from: the shipped file, and what officers
changed in the console (stored, audited)."""
