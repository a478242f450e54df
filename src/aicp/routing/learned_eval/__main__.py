import sys

from aicp.routing.learned_eval.runner import main

sys.exit(main())
