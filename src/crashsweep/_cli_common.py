"""What every command of the command line shares: exit codes (DESIGN §6) and the usage error."""

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
EXIT_INTERNAL = 70        # EX_SOFTWARE: a bug in crashsweep itself (never confused with 1, "violations found")


class UsageError(Exception):
    """Bad command-line usage; printed as one line, exit 2."""
