"""``python -m lesionres.analysis results.csv --out report/``: the analyze command on its own.

Same flags as ``python -m lesionres analyze``; a :class:`~lesionres.errors.LesionresError`
is printed as one line and exits with status 2.
"""

import sys

from lesionres.cli import main

sys.exit(main(["analyze", *sys.argv[1:]]))
