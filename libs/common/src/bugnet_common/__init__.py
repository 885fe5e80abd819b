"""What every Bugnet service shares, and nothing domain-specific.

Public surface: settings (ServiceSettings), db (Database, new_base, migrate), errors (ApiError and
its subclasses), web (create_service_app, ok, created, paginated, json_body, Page), auth
(JwtVerifier, Principal, RevocationSet), apikeys, logs, health and bus (subjects, events,
outbox, inbox, kv, worker runtime, the api-side BusThread).
"""
