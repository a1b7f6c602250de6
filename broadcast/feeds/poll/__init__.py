"""Polling a source: ``fetch`` over HTTP, ``polling`` one poll from fetch to recorded health,
``intake`` storing what is new and running the rules in one transaction, ``schedule`` one
APScheduler job per enabled source.
"""
