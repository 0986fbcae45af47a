#!/usr/bin/env python3
"""Writes the seed corpus of the `snp_evidence` fuzz target into DIR: the
release request's `evidence` object of every raw or hex report in
../shared/vectors/snp, and the `az-snp-vtpm` object of each versioned
trustee Azure vector (generated here, never committed: the vectors stay
in shared/)."""
import base64
import json
import pathlib
import sys

VECTORS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared/vectors/snp"


def pem(data: bytes) -> str:
    if b"-----BEGIN" in data:
        return data.decode()
    body = base64.b64encode(data).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    listing = VECTORS / "vectors.json"
    if not listing.is_file():
        print(f"no SNP vectors at {VECTORS}: seeds only from fuzz/seeds", file=sys.stderr)
        return
    written = 0
    for i, vector in enumerate(json.loads(listing.read_text())["vectors"]):
        if vector["format"] not in ("raw", "hex"):
            continue
        report = (VECTORS / vector["report"]).read_bytes()
        if vector["format"] == "hex":
            report = bytes.fromhex("".join(report.decode().split()))
        certs = [pem((VECTORS / c).read_bytes()) for c in vector["certs"]]
        evidence = {
            "type": "sev-snp",
            "report": base64.b64encode(report).decode(),
            "certs": {"vcek": certs[0], **({"ark": "".join(certs[1:])} if len(certs) > 1 else {})},
        }
        (out / f"vector-{i}.json").write_text(json.dumps(evidence))
        written += 1
    for path in sorted((VECTORS / "trustee/az-snp-vtpm").glob("evidence-v[12].json")):
        doc = json.loads(path.read_text())
        hcl = b64url(doc["hcl_report"])
        quote = doc["tpm_quote"]
        evidence = {
            "type": "az-snp-vtpm",
            "hclReport": base64.b64encode(hcl).decode(),
            "tpmQuote": {
                "message": base64.b64encode(bytes.fromhex(quote["message"])).decode(),
                "signature": base64.b64encode(bytes.fromhex(quote["signature"])).decode(),
                "pcrs": quote["pcrs"],
            },
            "certs": {"vcek": pem(b64url("".join(doc["vcek"].split())))},
        }
        (out / f"azure-{path.stem}.json").write_text(json.dumps(evidence))
        written += 1
    print(f"{written} evidence seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
