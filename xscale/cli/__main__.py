"""`python -m xscale.cli ...`: the same commands as the `xscale` script."""

import sys

from xscale.cli import main

sys.exit(main())
