#!/usr/bin/env python3
"""Google Tink (PyPI `tink`, 1.16) on the other side of Keyferry's keys interoperability test.

Reads one JSON request on stdin, prints one JSON result on stdout. Binary values are standard
base64.

Request:
  {"privateKeyset": "<binary Tink Keyset>",            # optional
   "decrypt": [{"ciphertext": "...", "contextInfo": "..."}],
   "publicKeysetJson": "<Tink JSON public keyset>",    # optional
   "encrypt": [{"plaintext": "...", "contextInfo": "..."}]}
Result:
  {"decrypted": [{"plaintext": "..."} | {"error": "..."}],
   "derivedPublicKeysetJson": "<public keyset Tink derives from privateKeyset>",
   "encrypted": ["<ciphertext>"]}

A keyset or primitive that Tink refuses to load is a fatal error (exit status 1, message on
stderr): that is an interoperability failure, not a per-item result.
"""

import base64
import json
import sys

import tink
from tink import hybrid
from tink import secret_key_access


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def main() -> None:
    request = json.load(sys.stdin)
    hybrid.register()
    result = {"decrypted": [], "encrypted": []}

    if "privateKeyset" in request:
        # Tink 1.16: cleartext binary keysets need the secret key access token.
        handle = tink.proto_keyset_format.parse(
            unb64(request["privateKeyset"]), secret_key_access.TOKEN
        )
        result["derivedPublicKeysetJson"] = tink.json_proto_keyset_format.serialize_without_secret(
            handle.public_keyset_handle()
        )
        decrypter = handle.primitive(hybrid.HybridDecrypt)
        for item in request.get("decrypt", []):
            try:
                plaintext = decrypter.decrypt(
                    unb64(item["ciphertext"]), unb64(item["contextInfo"])
                )
                result["decrypted"].append({"plaintext": b64(plaintext)})
            except tink.TinkError as error:
                result["decrypted"].append({"error": str(error)})

    if "publicKeysetJson" in request:
        public = tink.json_proto_keyset_format.parse_without_secret(request["publicKeysetJson"])
        encrypter = public.primitive(hybrid.HybridEncrypt)
        for item in request.get("encrypt", []):
            result["encrypted"].append(
                b64(encrypter.encrypt(unb64(item["plaintext"]), unb64(item["contextInfo"])))
            )

    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
