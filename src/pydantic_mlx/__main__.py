"""`python -m pydantic_mlx`: the `pydantic-mlx` command."""

import sys

from .cli import main

sys.exit(main())
