"""Providers: one module per push service behind one contract (see contract.py). They never touch storage."""
