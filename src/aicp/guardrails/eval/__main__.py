import sys

from aicp.guardrails.eval.runner import main

sys.exit(main())
