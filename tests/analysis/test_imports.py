"""Import hygiene of lesionres.analysis: no torch, no Lightning, no pyplot."""

from __future__ import annotations

import subprocess
import sys

from analysis_tables import REPO


def test_importing_analysis_imports_no_torch_lightning_or_pyplot():
    code = (
        "import sys, lesionres.analysis\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning', 'torchio', 'nibabel', "
        "'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
