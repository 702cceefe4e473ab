"""The learned I2FET model: generated data (data), IFED (ifed), key generator (generator), transitions
(transition), FLAME-space data (flame), configuration (config) and the runtime-facing generator (learned).

Heavy imports (torch) happen only when a submodule is imported: `from model_runtime.models.data import ...` needs
numpy alone.
"""

__all__ = ["config", "data", "flame", "generator", "ifed", "learned", "transition"]
