"""The ``quovadis`` command line: ``main.py`` builds the parser, one file per command."""
