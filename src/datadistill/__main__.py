"""`python -m datadistill ...` (and `torchrun -m datadistill ...`): the command line."""

import sys

from .cli import main

sys.exit(main())
