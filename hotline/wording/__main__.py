"""``python -m hotline.wording``: check the wording files after an edit (no app, no database)."""

from __future__ import annotations

import sys

from hotline.wording.check import main

sys.exit(main())
