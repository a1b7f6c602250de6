"""Reading what a feed says: bytes in, frozen readings or CAP alerts out, no I/O.

``parsing`` reads water-level documents (RSS/Atom, JSON), ``cap`` CAP alerts and indexes,
``units`` converts readings between units; ``extract`` picks the parser per kind of source and
runs it in a worker process.
"""
