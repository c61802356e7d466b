"""Applications built on the library: the demo (``tsm demo``), the live server (``tsm serve``) and
the web export (``tsm export --format web``: the model in the browser).

The top layer below the CLI: an app may use every other package; nothing but the CLI imports it.
"""
