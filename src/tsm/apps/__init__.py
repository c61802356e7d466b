"""Applications built on the library: the demo (``tsm demo``) and the live server (``tsm serve``).

The top layer below the CLI: an app may use every other package; nothing but the CLI imports it.
"""
