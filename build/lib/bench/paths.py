"""Where things are: the checkout (``ROOT``, with the Procfile) and the commands of this Python (``BIN``).

    subprocess.Popen([BIN / "honcho", "start"], cwd=ROOT)
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROCFILE = ROOT / "Procfile"
