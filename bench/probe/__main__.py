"""``python -m bench.probe`` is ``scripts/probe``: see bench.probe.command."""
import sys

from bench.probe.command import main

sys.exit(main())
