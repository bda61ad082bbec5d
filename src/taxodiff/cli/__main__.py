import sys

from taxodiff.cli import main

sys.exit(main())
