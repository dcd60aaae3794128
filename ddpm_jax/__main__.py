import sys

from ddpm_jax.cli import main

sys.exit(main())
