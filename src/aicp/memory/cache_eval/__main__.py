import sys

from aicp.memory.cache_eval.runner import main

sys.exit(main())
