"""``python -m lesionres.analysis results.csv --out report/``: the analyze command on its own.

Same flags as ``python -m lesionres analyze``; a :class:`~lesionres.errors.LesionresError`
is printed as one line and exits with status 2.
"""

import sys

from lesionres.analysis.report import analyze_main
from lesionres.errors import LesionresError

try:
    sys.exit(analyze_main())
except LesionresError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
