import sys

from mptcpspec.cli import main

sys.exit(main())
