"""The learned I2FET model's parts: IFED (ifed), the key generator (generator), transitions (transition), their
configuration (config) and the run-time features the transitions read (features). The runtime-facing generator that
assembles them is `generators.learned`; the data that trains them is in `training/`.

Importing the package costs nothing; every submodule but `features` (numpy only, used by training data too) imports
torch.
"""

__all__ = ["config", "features", "generator", "ifed", "transition"]
