"""The ``wsprobe`` command line: subcommands, the one-shot probe command and its output."""
