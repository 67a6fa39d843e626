"""The local token endpoint: one HTTP server that answers, for every resource in the state, the
way that resource's host answers managed identity token requests, so that unmodified Azure SDK
clients (azure-identity, msal) get real, verifiable tokens on a laptop or in CI.

Modules, from the wire inwards:
- `wire`: HTTP/1.1 on the wire: a request head parsed (with its limits), body framing, keep-alive,
  a response rendered to bytes.
- `connection`: one client connection: bounded reads, pipelined requests answered in order,
  closing by half-closing and draining.
- `httploop`: the asyncio listener and its policy under abuse: idle-connection eviction, deadlines,
  round-robin turns for pipelining floods.
- `serverlog`: the server's log: escaped, bounded lines; like lines summed up.
- `app`: the application: routes a request (`Application._route`), applies faults, reads the state
  live, dispatches to the resource's host protocol; `Server` ties the listeners to it.
- `routes`: the URL layout (which path is which resource's endpoint) for the server and `msi env`.
- `protocol`: the host protocols' base (`HostProtocol`) and token-request parsing they share.
- `imds`, `appservice`: the two host protocols (App Service also serves Functions and Container
  Apps): request rules, selectors, response and error bodies.
- `messages`: Request, Response, and the query-string parser.
- `discovery`: OpenID configuration and JWKS per tenant.
- `faults`: fault injection for client testing (throttling, 410, 5xx, latency).
- `live`: the state and the platform token cache, re-read only when their files change.
- `timesource`: the clocks the server reads and waits on (injected: tests move a manual one).
- `runfile`: `<state>.d/server.json`, how other commands find a running server.
- `background`: a server on a background thread (tests, benchmarks).

Decisions (which identity, the chain of trust, token errors) come from the core through
`msi_cli.tokenservice`; this package only parses HTTP and renders responses. It never logs a token,
a key or a secret.
"""
