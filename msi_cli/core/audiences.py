"""The audiences (resource URIs) every simulated tenant knows and issues tokens for."""

from __future__ import annotations

# Resource URIs of Microsoft's first-party services every tenant knows (with or without the
# trailing slash), plus per-account hosts of Key Vault and Storage.
KNOWN_AUDIENCES = (
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://vault.azure.net",
    "https://storage.azure.com",
    "https://graph.microsoft.com",
    "https://graph.windows.net",
    "https://database.windows.net",
    "https://ossrdbms-aad.database.windows.net",
    "https://servicebus.azure.net",
    "https://eventhubs.azure.net",
    "https://cognitiveservices.azure.com",
    "https://monitor.azure.com",
    "https://api.loganalytics.io",
    "https://kusto.kusto.windows.net",
    "https://containerregistry.azure.net",
    "https://azurecontainerapps.dev",
    "https://appconfig.azure.com",
    "https://search.azure.com",
    "https://cosmos.azure.com",
    "https://redis.azure.com",
    "https://batch.core.windows.net",
    "https://digitaltwins.azure.net",
    "https://api.fabric.microsoft.com",
    "api://AzureADTokenExchange",
)
_KNOWN = {a.lower() for a in KNOWN_AUDIENCES}
_ACCOUNT_SUFFIXES = (
    ".vault.azure.net", ".blob.core.windows.net", ".queue.core.windows.net", ".table.core.windows.net",
    ".file.core.windows.net", ".dfs.core.windows.net", ".azurecr.io", ".servicebus.windows.net",
)


def audience_known(audience: str) -> bool:
    """Whether the tenants know this resource URI. A v2 scope (`https://vault.azure.net/.default`)
    is not one: IMDS, App Service and Entra's v1 endpoint take the resource itself, and the
    resource principal named `.../.default` is not found (AADSTS500011); the v2 token endpoint
    takes the scope off before asking."""
    low = audience.strip().lower().rstrip("/")
    if low in _KNOWN:
        return True
    host = low.removeprefix("https://").split("/", 1)[0]
    return low.startswith("https://") and any(host.endswith(s) and len(host) > len(s) for s in _ACCOUNT_SUFFIXES)
