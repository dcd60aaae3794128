import sys

from ddpm_torch.cli import main

sys.exit(main())
