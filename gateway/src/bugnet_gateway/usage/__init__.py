"""The gateway's usage collector: Envoy streams an access-log entry for every request over
gRPC (ALS); the collector counts them per UTC day, project, endpoint group and status class
and publishes the counts to the bus as ``bugnet.gateway.v1.usage_counted`` events.

Run it with ``python -m bugnet_gateway.usage --port PORT --nats-url URL``.
"""
