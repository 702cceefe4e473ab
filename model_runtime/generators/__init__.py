"""Generators: instruction segments -> key expressions -> frames. `registry` names them for `Runtime.load`."""
