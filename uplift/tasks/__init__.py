"""File in, file out: one function per command that reads its inputs, calls the library,
writes its outputs atomically and records the run's manifest beside them.

These are what the CLI (and the service) call; the modules below them (features, churn,
effects, allocate, evaluate) work on loaded tables and never read or write files themselves.
"""
