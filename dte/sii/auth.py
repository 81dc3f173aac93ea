"""Tokens: seed → signed getToken → token (DOMAIN.md §2), cached per certificate, environment
and kind (SOAP or boleta) in the Django cache (Redis in production), renewed when a call reports
a token error."""

from django.conf import settings
from django.core.cache import cache

from dte.core.certificate import Certificate
from dte.core.signing import sign_get_token
from dte.sii.client import SiiClient


def _key(certificate: Certificate, env: str, boleta: bool) -> str:
    from cryptography.hazmat.primitives import hashes

    fingerprint = certificate.certificate.fingerprint(hashes.SHA256()).hex()[:32]
    return f"sii:token:{env}:{'boleta' if boleta else 'soap'}:{fingerprint}"


def get_token(client: SiiClient, certificate: Certificate, *, env: str, boleta: bool) -> str:
    key = _key(certificate, env, boleta)
    token = cache.get(key)
    if token:
        return str(token)
    if boleta:
        token = client.boleta_token(sign_get_token(client.boleta_seed(), certificate))
    else:
        token = client.get_token(sign_get_token(client.get_seed(), certificate))
    cache.set(key, token, settings.SII_TOKEN_TTL)
    return token


def forget_token(certificate: Certificate, *, env: str, boleta: bool) -> None:
    cache.delete(_key(certificate, env, boleta))
