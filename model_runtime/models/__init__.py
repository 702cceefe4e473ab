"""The learned I2FET model's parts: IFED (ifed), the key generator (generator), transitions (transition), their
configuration (config), the run-time features the transitions read (features) and the functional calls the run time's
hot paths use (functional). The runtime-facing generator that assembles them is `generators.learned`; the data that
trains them is in `training/`.

Importing the package costs nothing; every submodule but `features` (numpy only, used by training data too) imports
torch.
"""

__all__ = ["config", "features", "functional", "generator", "ifed", "transition"]
