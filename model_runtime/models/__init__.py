"""The learned I2FET model's parts: IFED (ifed), the key generator (generator), transitions (transition),
configuration (config) and generated data (data). The runtime-facing generator that assembles them is
`generators.learned`.

Heavy imports (torch) happen only when a submodule is imported: `from model_runtime.models.data import ...` needs
numpy alone.
"""

__all__ = ["config", "data", "flame", "generator", "ifed", "transition"]
