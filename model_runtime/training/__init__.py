"""Training: the I2FET model (`train`, over generated ARKit data in `arkit_data` or FLAME sequences read through
`rigs/` in `flame_data`), and its model card (`model_card`).

`arkit_data` also defines the held-out evaluation split that `evaluation/` reads.
"""

import sys


def say(line: str) -> None:
    """One progress line on stderr."""
    print(f"[i2fet train] {line}", file=sys.stderr, flush=True)
