import sys

from aicp.compress.eval.runner import main

sys.exit(main())
