import sys

from r1ci_verl.cli import main

sys.exit(main())
