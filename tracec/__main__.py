"""`python -m tracec` runs the tracec command line."""

import sys

from tracec.cli import main

sys.exit(main())
