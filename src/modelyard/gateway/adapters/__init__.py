"""One adapter per wire format, behind :class:`~modelyard.gateway.adapters.base.Adapter`.

Each adapter module declares the provider kinds it speaks to
(:class:`~modelyard.providers.kinds.ProviderKindSpec`); built-in kinds and a plugin's
register the same way, as ``modelyard.providers`` entry points, and
:class:`~modelyard.gateway.adapters.registry.AdapterRegistry` takes their adapters.
"""
