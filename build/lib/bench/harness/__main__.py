"""``python -m bench.harness`` is ``scripts/check``: see bench.harness.check."""
import sys

from bench.harness.check import main

sys.exit(main())
