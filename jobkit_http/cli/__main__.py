"""`python -m jobkit_http.cli`: the `jobkit` command."""

from jobkit_http.cli import main

raise SystemExit(main())
