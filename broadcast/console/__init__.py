"""The officer and volunteer console at ``/console``: server-rendered pages over the domain
services, signed in with a password and a session cookie."""
