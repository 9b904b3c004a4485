"""`make bench`: chatsite under load on this machine, next to a raw relay and the bare provider.

Run with `python -m bench` (the Makefile points it at a dedicated database and Redis db).
"""
