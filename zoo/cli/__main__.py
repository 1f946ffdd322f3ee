"""``python -m zoo.cli`` and ``torchrun -m zoo.cli``: the ``quovadis`` command."""
import sys

from zoo.cli.main import main

sys.exit(main())
