"""``python -m benchmarks``: see benchmarks/cli.py."""

from .cli import main

raise SystemExit(main())
