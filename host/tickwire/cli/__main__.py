"""``python -m tickwire.cli``."""

from tickwire.cli.main import main

raise SystemExit(main())
