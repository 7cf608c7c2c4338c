"""jobkit_http: the Starlette API, auth, metrics and the `jobkit` command line."""

__all__: list[str] = []
