"""One module per ``kdlab`` command: ``add(subparsers)`` registers its parser with ``run`` (args -> a JSON-ready
dict) and ``show`` (that dict -> the human summary printed without ``--json``)."""
