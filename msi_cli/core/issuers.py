"""External OIDC issuers msi plays: GitHub Actions, a Kubernetes cluster, or a generic one.

Each has its own RS256 key in the key store. Its issuer URL is `{base}/issuers/{name}`, where
`base` is the address `msi serve` publishes it at (its discovery document and JWKS live under
that URL), so only the name is kept in the state and every URL is made by `url(base, name)`.

Tokens follow the real issuers' shapes:
- github: `sub` `repo:OWNER/REPO:ref:refs/heads/BRANCH`, `repo:OWNER/REPO:environment:ENV` or
  `repo:OWNER/REPO:pull_request`, with GitHub's claims (repository, repository_owner, ref, sha,
  job_workflow_ref, actor, event_name, jti...), 5-minute lifetime, default `aud`
  `https://github.com/OWNER`;
- kubernetes: a projected service-account token, `sub` `system:serviceaccount:NS:SA`, a
  `kubernetes.io` claim (namespace, service account, pod), `aud` `[api://AzureADTokenExchange]`,
  1 h;
- generic: iss, sub, aud, iat, nbf, exp, jti; `aud` `api://AzureADTokenExchange`, 1 h.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any

from msi_cli.core.timefmt import DAY
from msi_cli.core.context import Ctx
from msi_cli.core.model import Issuer, State
from msi_cli.errors import Conflict, InvalidArgument, InvalidName, NotFound

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing

KINDS = ("github", "kubernetes", "generic")
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}")
KEY_VALIDITY = 3650 * DAY
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
LIFETIMES = {"github": 300, "kubernetes": 3600, "generic": 3600}
RESERVED = ("iss", "iat", "nbf", "exp")  # set from the issuer and --lifetime, never by --claim

GITHUB_SUBJECT = re.compile(
    r"repo:(?P<owner>[^/:]+)/(?P<repo>[^/:]+):(?:ref:(?P<ref>refs/\S+)|environment:(?P<env>[^:]+)|(?P<pr>pull_request))"
)
K8S_SUBJECT = re.compile(r"system:serviceaccount:(?P<ns>[^:]+):(?P<sa>[^:]+)")


def url(base: str, name: str) -> str:
    """The issuer URL (`iss`) of an issuer msi serves at `base`, e.g. https://127.0.0.1:8443."""
    return f"{base.rstrip('/')}/issuers/{name}"


def validate_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidName(f"invalid issuer name '{name}'", hint="1-63 characters: letters, digits, '-' or '_', starting with a letter or digit")


def create(ctx: Ctx, name: str, kind: str) -> Issuer:
    validate_name(name)
    if kind not in KINDS:
        raise InvalidArgument(f"unknown issuer kind '{kind}'", hint=f"use one of {', '.join(KINDS)}")
    if name.lower() in ctx.state.issuers:
        raise Conflict(f"an issuer named '{ctx.state.issuers[name.lower()].name}' already exists")
    kid = ctx.keys.new_issuer_key(name, ctx.now, ctx.now + KEY_VALIDITY)
    issuer = Issuer(name, kind, kid, ctx.now_iso)
    ctx.state.issuers[name.lower()] = issuer
    ctx.log("Create OIDC issuer", name, f"{kind}, kid {kid}")
    return issuer


def find(state: State, name: str) -> Issuer:
    found = state.issuers.get(name.lower())
    if found is None:
        raise NotFound(f"issuer '{name}' not found", hint="create it with: msi issuer create NAME --kind github|kubernetes|generic")
    return found


def at_url(state: State, base: str, iss: str) -> Issuer | None:
    """The issuer msi plays whose URL is exactly `iss` (case-sensitive, as Entra compares)."""
    prefix = url(base, "")
    if not base or not iss.startswith(prefix):
        return None
    found = state.issuers.get(iss[len(prefix):].lower())
    return found if found is not None and url(base, found.name) == iss else None


def elsewhere(state: State, base: str) -> dict[str, int]:
    """The origins other than `base` (another port of a loopback host) at which federated
    credentials trust issuers msi plays, with how many trust each. An issuer's URL holds the
    server's port, so such credentials stop matching once msi serve runs on another one."""
    import re

    found: dict[str, int] = {}
    for cred in state.federated_credentials.values():
        hit = re.fullmatch(r"(https://(?:127\.0\.0\.1|localhost|\[::1\]):\d+)/issuers/([^/]+)", cred.issuer)
        if hit and hit.group(1) != base.rstrip("/") and hit.group(2).lower() in state.issuers:
            found[hit.group(1)] = found.get(hit.group(1), 0) + 1
    return found


def shape(issuer: Issuer, base: str | None) -> dict[str, Any]:
    return {
        "name": issuer.name,
        "kind": issuer.kind,
        "issuer": url(base, issuer.name) if base else None,
        "kid": issuer.kid,
        "created": issuer.created,
    }


def discovery(base: str, issuer: Issuer) -> dict[str, Any]:
    """The OpenID configuration at `{issuer}/.well-known/openid-configuration`."""
    iss = url(base, issuer.name)
    doc = {
        "issuer": iss,
        "jwks_uri": f"{iss}/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    if issuer.kind == "github":
        doc["scopes_supported"] = ["openid"]
        doc["claims_supported"] = ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository", "repository_owner",
                                   "actor", "event_name", "job_workflow_ref", "environment"]
    return doc


def jwks(keys: KeyRing, issuer: Issuer) -> dict[str, Any]:
    from msi_cli import crypto

    jwk = crypto.jwk_from_certificate(keys.public_certificate_der(issuer.kid), issuer.kid)
    return {"keys": [{**jwk, "alg": "RS256"}]}


def parse_claims(pairs: list[str]) -> dict[str, Any]:
    """`--claim k=v` values; a value that reads as JSON (a number, true, a list...) is taken as such."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidArgument(f"invalid claim '{pair}'", hint="use NAME=VALUE")
        if name in RESERVED:
            raise InvalidArgument(f"claim '{name}' is set by the issuer", hint="use --lifetime for the token's validity")
        if name in ("sub", "aud"):  # checked as given by their options (a GitHub subject's shape), never bypassed
            raise InvalidArgument(f"claim '{name}' is set by --{'subject' if name == 'sub' else 'audience'}")
        try:
            out[name] = json.loads(value) if value[:1] in "[{0123456789-tfn\"" else value
        except ValueError:
            out[name] = value
    return out


def _digest(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()


def github_claims(subject: str) -> dict[str, Any]:
    m = GITHUB_SUBJECT.fullmatch(subject)
    if m is None:
        raise InvalidArgument(
            f"'{subject}' is not a GitHub Actions subject",
            hint="use repo:OWNER/REPO:ref:refs/heads/BRANCH, repo:OWNER/REPO:environment:ENV or repo:OWNER/REPO:pull_request",
        )
    owner, repo = m["owner"], m["repo"]
    if m["pr"]:
        ref, event = "refs/pull/1/merge", "pull_request"
    else:
        ref, event = m["ref"] or "refs/heads/main", "push"
    claims = {
        "ref": ref,
        "sha": _digest(subject, "sha"),
        "repository": f"{owner}/{repo}",
        "repository_owner": owner,
        "run_id": str(int(_digest(subject, "run")[:8], 16)),
        "run_number": "1",
        "run_attempt": "1",
        "actor": owner,
        "event_name": event,
        "ref_type": "branch" if ref.startswith("refs/heads/") else "tag" if ref.startswith("refs/tags/") else "",
        "workflow": "CI",
        "job_workflow_ref": f"{owner}/{repo}/.github/workflows/ci.yml@{ref}",
        "runner_environment": "github-hosted",
    }
    if m["env"]:
        claims["environment"] = m["env"]
    return claims


def kubernetes_claims(subject: str) -> dict[str, Any]:
    m = K8S_SUBJECT.fullmatch(subject)
    if m is None:
        raise InvalidArgument(f"'{subject}' is not a Kubernetes service-account subject", hint="use system:serviceaccount:NAMESPACE:NAME")
    ns, sa = m["ns"], m["sa"]
    return {
        "kubernetes.io": {
            "namespace": ns,
            "pod": {"name": f"{sa}-0", "uid": str(uuid.UUID(_digest(subject, "pod")[:32]))},
            "serviceaccount": {"name": sa, "uid": str(uuid.UUID(_digest(subject, "sa")[:32]))},
        },
    }


def default_audience(issuer: Issuer, subject: str) -> str:
    if issuer.kind == "github":
        m = GITHUB_SUBJECT.fullmatch(subject)
        if m is not None:
            return f"https://github.com/{m['owner']}"
    return EXCHANGE_AUDIENCE


MAX_LIFETIME = 366 * 86400


def claims_for(issuer: Issuer, base: str, now: int, subject: str, audience: str | None = None,
               extra: dict[str, Any] | None = None, lifetime: int | None = None) -> dict[str, Any]:
    """The claim set of a token the issuer would hand out now (validated, not signed)."""
    if not subject:
        raise InvalidArgument("the token needs a subject")
    life = LIFETIMES[issuer.kind] if lifetime is None else lifetime
    if life <= 0:
        raise InvalidArgument("the token's lifetime must be positive")
    if life > MAX_LIFETIME:  # msi's limit as the issuer: every time in the token stays a date Entra's messages can print
        raise InvalidArgument(f"the token's lifetime can be at most {MAX_LIFETIME // 86400}d")
    aud: str | list[str]
    aud = audience or default_audience(issuer, subject)
    claims: dict[str, Any] = {"jti": str(uuid.uuid4()), "sub": subject}
    if issuer.kind == "github":
        claims.update(github_claims(subject))
    elif issuer.kind == "kubernetes":
        claims.update(kubernetes_claims(subject))
        aud = [aud]
    claims.update({"aud": aud, "iss": url(base, issuer.name), "iat": now, "nbf": now, "exp": now + life})
    for name, value in (extra or {}).items():
        if name in RESERVED:
            raise InvalidArgument(f"claim '{name}' is set by the issuer")
        claims[name] = value
    return claims


def sign(keys: KeyRing, issuer: Issuer, claims: dict[str, Any]) -> str:
    from msi_cli import crypto

    private = crypto.private_key(keys.signing_key_pem(issuer.kid))
    return crypto.jws_sign({"typ": "JWT", "alg": "RS256", "kid": issuer.kid, "x5t": issuer.kid}, claims, private)


def mint(keys: KeyRing, issuer: Issuer, base: str, now: int, subject: str, audience: str | None = None,
         extra: dict[str, Any] | None = None, lifetime: int | None = None) -> str:
    """A signed token from the issuer, on the simulated clock `now`."""
    return sign(keys, issuer, claims_for(issuer, base, now, subject, audience, extra, lifetime))
