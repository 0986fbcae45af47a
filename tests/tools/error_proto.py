"""Parses key API error bodies strictly as the Privacy Sandbox ErrorResponse.

The schema is written here, from the coordinator's
shared/protos/api/v1/error_response.proto (ErrorResponse {int32 code = 1;
string message = 2; repeated Details details = 3;} and Details {string
reason = 1; string domain = 2; map<string, string> metadata = 3;}), and the
body goes through protobuf's own json_format.Parse with unknown fields
refused, which is what the Java fetcher's JsonFormat.parser() does. On top of
the parse, what ErrorUtil and Code.java need: a non-zero code and a message
(otherwise the fetcher falls back to UNKNOWN), and a code of Code.java's
table whose HTTP status is the response's (for a status the table lacks,
such as 405 or 413: INVALID_ARGUMENT for a 4xx, UNKNOWN for a 5xx).

stdin: a JSON list of {"status": int, "body": <the body>}.
stdout: one line per body, "<status> <code name> <reason>".
Exits 1 naming the first body that fails.
"""

import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

# Code.java: rpc status code -> (name, HTTP status). UNIMPLEMENTED (12) is
# commented out of that enum, so fromRpcStatusCode(12) throws.
CODES = {
    0: ("OK", 200),
    17: ("ACCEPTED", 202),
    1: ("CANCELLED", 499),
    2: ("UNKNOWN", 500),
    3: ("INVALID_ARGUMENT", 400),
    4: ("DEADLINE_EXCEEDED", 504),
    5: ("NOT_FOUND", 404),
    6: ("ALREADY_EXISTS", 409),
    7: ("PERMISSION_DENIED", 403),
    16: ("UNAUTHENTICATED", 401),
    8: ("RESOURCE_EXHAUSTED", 429),
    9: ("FAILED_PRECONDITION", 400),
    10: ("ABORTED", 409),
    11: ("OUT_OF_RANGE", 400),
    13: ("INTERNAL", 500),
    14: ("UNAVAILABLE", 503),
    15: ("DATA_LOSS", 500),
}


def error_response_class():
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="shared/protos/api/v1/error_response.proto",
        package="google.scp.protos.shared.api.v1",
        syntax="proto3",
    )
    details = file.message_type.add(name="Details")
    details.field.add(name="reason", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    details.field.add(name="domain", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry = details.nested_type.add(name="MetadataEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    details.field.add(
        name="metadata",
        number=3,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".google.scp.protos.shared.api.v1.Details.MetadataEntry",
    )
    response = file.message_type.add(name="ErrorResponse")
    response.field.add(name="code", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    response.field.add(name="message", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    response.field.add(
        name="details",
        number=3,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".google.scp.protos.shared.api.v1.Details",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.scp.protos.shared.api.v1.ErrorResponse")
    )


def main():
    ErrorResponse = error_response_class()
    for case in json.load(sys.stdin):
        status, text = case["status"], json.dumps(case["body"])
        try:
            parsed = json_format.Parse(text, ErrorResponse(), ignore_unknown_fields=False)
        except json_format.ParseError as e:
            sys.exit(f"{status} {text}: not an ErrorResponse: {e}")
        if parsed.code == 0 or not parsed.message:
            sys.exit(f"{status} {text}: code 0 or no message (the fetcher reads UNKNOWN)")
        if parsed.code not in CODES:
            sys.exit(f"{status} {text}: code {parsed.code} is not in Code.java (it throws)")
        name, http = CODES[parsed.code]
        # A status the table has must get a code that stands for it; one it
        # lacks (405, 413, ...) the code of its class.
        if status in {h for _, h in CODES.values()}:
            if http != status:
                sys.exit(f"{status} {text}: {name} stands for HTTP {http}")
        elif parsed.code != (3 if 400 <= status < 500 else 2):
            sys.exit(f"{status} {text}: a status outside the table gets its class's code")
        if len(parsed.details) != 1 or not parsed.details[0].reason:
            sys.exit(f"{status} {text}: one detail with a reason expected")
        print(status, name, parsed.details[0].reason)


if __name__ == "__main__":
    main()
