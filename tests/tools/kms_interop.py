"""Independent KMS client for interop tests: boto3, not the Rust SDK.

usage: kms_interop.py ENDPOINT REGION KEY_ARN encrypt|decrypt HEX
       kms_interop.py ENDPOINT REGION - create-key
Prints the result as hex (the new key's ARN for create-key). Uses an empty encryption context, as Tink does.
"""
import sys

import boto3

endpoint, region, key_arn, mode = sys.argv[1:5]
data_hex = sys.argv[5] if len(sys.argv) > 5 else ""
kms = boto3.client(
    "kms",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
data = bytes.fromhex(data_hex)
if mode == "create-key":
    print(kms.create_key()["KeyMetadata"]["Arn"])
    sys.exit(0)
if mode == "encrypt":
    out = kms.encrypt(KeyId=key_arn, Plaintext=data)["CiphertextBlob"]
elif mode == "decrypt":
    out = kms.decrypt(KeyId=key_arn, CiphertextBlob=data)["Plaintext"]
else:
    sys.exit(f"unknown mode {mode}")
print(out.hex())
