"""One adapter per wire format, behind :class:`~modelyard.gateway.adapters.base.Adapter`.

Built-in adapters register through :func:`~modelyard.gateway.adapters.registry.register`,
the same path a plugin would use.
"""
