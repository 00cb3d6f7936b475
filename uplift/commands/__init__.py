"""The command-line shell's commands, one module per area; :mod:`uplift.cli` registers them.

Each command parses its options, calls one library function (mostly in :mod:`uplift.tasks` or
:mod:`uplift.planner`) and prints the result. Heavy libraries are imported inside the commands
so ``uplift --help`` stays fast.
"""
