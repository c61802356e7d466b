"""The ``tsm`` command line."""
