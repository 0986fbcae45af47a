"""Verifies a Keyferry credential with PyJWT, an implementation independent of
the broker's: fetches the JWKS named by the issuer's discovery document, checks
the ES256 signature, issuer, audience and expiry, and prints header and claims
as JSON. Usage: verify_jwt.py TOKEN ISSUER AUDIENCE"""
import json
import sys
import urllib.request

import jwt

token, issuer, audience = sys.argv[1:4]
with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as r:
    discovery = json.load(r)
assert discovery["issuer"] == issuer, discovery
key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    key.key,
    algorithms=discovery["id_token_signing_alg_values_supported"],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
