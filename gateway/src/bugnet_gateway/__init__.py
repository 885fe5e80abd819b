"""Bugnet's Envoy gateway: the route table as data (``bugnet_gateway.routes``) and the Envoy v3
bootstrap rendered from it (``bugnet_gateway.render``, also ``python -m bugnet_gateway.render``)."""
