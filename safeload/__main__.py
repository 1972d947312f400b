"""``python -m safeload``: the same as the ``safeload`` command."""

from safeload._cli import main

raise SystemExit(main())
