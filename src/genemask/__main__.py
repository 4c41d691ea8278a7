import sys

from genemask.cli import main

sys.exit(main())
