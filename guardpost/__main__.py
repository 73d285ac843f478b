"""Allows ``python -m guardpost``."""

from guardpost.cli import main

raise SystemExit(main())
