"""API usage (spec §6 api-usage): the gateway's request counts per project and UTC day, by
endpoint group and status class, with rate-limit hits (also those Envoy refused itself).

Source: ``bugnet.gateway.v1.usage_counted`` events of the gateway's usage collector
(``bugnet_gateway.usage``), consumed by ``analytics-usage`` (``consumer.py``) into
``api_usage_daily`` (``models.py``); served by ``GET /api/projects/{slug}/analytics/api-usage``.

Attribution: a project route names its project by the slug in the path; an SDK route by the
SHA-256 of its ``X-API-Key`` header, looked up in the ``api_keys`` read model (a rotated-away
key still names its project: its 401s are that project's traffic). SDK requests that send the
key only in the JSON body (``api_key``, the Godot SDK's sessions) cannot be attributed: the
gateway never reads bodies. A count whose project the read models do not know yet (its
first requests often overtake ``project_created``) waits in ``api_usage_pending`` and is
retried with every later event; after 10 minutes it is dropped (a mistyped slug, a made-up
key). Counts outside any project (auth, notifications, unknown paths) are not stored.

Report (``service.api_usage``): every day of the window oldest first, zeros included;
``by_group`` lists the groups with requests, ``by_status`` always 2xx/3xx/4xx/5xx (plus
``none``, requests the client abandoned before any answer, when there are some);
``rate_limited`` = 429s from anyone, ``rate_limited_by_gateway`` = those from Envoy's limiter,
``refused_by_gateway`` = every request Envoy answered itself; ``totals`` adds ``days``,
``from`` and ``to``.
"""
