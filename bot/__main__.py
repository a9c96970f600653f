"""``python -m bot`` runs the atombot CLI."""

from bot.cli import main

raise SystemExit(main())
