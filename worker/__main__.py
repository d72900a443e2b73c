"""`python -m worker [celery worker options]`: a restore worker, same as `cctv-archive worker`."""

import sys

from worker.celery_app import main

sys.exit(main(sys.argv[1:]))
