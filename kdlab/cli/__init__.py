"""The ``kdlab`` command line (a front end, like ``kdlab.ui``): ``main`` parses, ``progress`` draws the bars,
``bench`` is the speed benchmark."""
