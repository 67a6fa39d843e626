"""The local token endpoint: one HTTP server that answers, for every resource in the state, the
way that resource's host answers managed identity token requests, so that unmodified Azure SDK
clients (azure-identity, msal) get real, verifiable tokens on a laptop or in CI.

Modules, from the wire inwards:
- `httploop`: the asyncio HTTP/1.1 loop: parsing with size limits and timeouts, keep-alive,
  request bodies, and fairness under abuse (idle-connection eviction, pipelining backpressure).
- `serverlog`: the server's log: escaped, bounded lines; like lines summed up.
- `app`: the application: routes a request, applies faults, reads the state live, dispatches.
- `routes`: the URL layout (which path is which resource's endpoint) for the server and `msi env`.
- `imds`, `appservice`: the two host protocols: request rules, selectors, response and error bodies.
- `discovery`: OpenID configuration and JWKS per tenant.
- `faults`: fault injection for client testing (throttling, 410, 5xx, latency).
- `live`: the state and the platform token cache, re-read only when their files change.
- `runfile`: `<state>.d/server.json`, how other commands find a running server.

Decisions (which identity, the chain of trust, token errors) come from the core through
`msi_cli.platform`; this package only parses HTTP and renders responses. It never logs a token,
a key or a secret.
"""
