"""`python -m app ...`: the same as the `cctv-archive` console script."""

import sys

from app.cli import main

sys.exit(main())
