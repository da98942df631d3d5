"""`python -m crashsweep` runs the command-line interface."""

from crashsweep.cli import main

raise SystemExit(main())
