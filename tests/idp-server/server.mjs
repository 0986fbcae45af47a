// Test-only OIDC issuer for the `idp` crate's integration tests.
//
// Wraps the third-party `oauth2-mock-server` (a real OIDC discovery + JWKS server) on
// 127.0.0.1 and is driven over stdin/stdout with one JSON object per line, so the Rust
// test needs no extra port and the process dies with its pipes.
//
// Start-up line (stdout): {"event":"ready","issuer":"http://127.0.0.1:PORT","port":PORT,"kid":"..."}
// Requests (stdin) and replies (stdout) carry the same "id":
//   {"id":1,"cmd":"token","claims":{...},"header":{...},"remove":["exp"]} -> {"id":1,"token":"..."}
//   {"id":2,"cmd":"rotate"}  -> {"id":2,"kid":"..."}   new RS256 key; later tokens use it
//   {"id":3,"cmd":"stats"}   -> {"id":3,"jwks":N,"discovery":M}  requests served so far
//   {"id":4,"cmd":"stop"}    -> {"id":4,"stopped":true}  the HTTP server stops listening
// Closing stdin ends the process.
import { createInterface } from 'node:readline';
import { OAuth2Server, Events } from 'oauth2-mock-server';

const server = new OAuth2Server();
let currentKid = (await server.issuer.keys.generate('RS256')).kid;

// oauth2-mock-server has no JWKS event: count the key store's serialisations, which happen
// exactly once per JWKS response.
const counts = { jwks: 0, discovery: 0 };
const keys = server.issuer.keys;
const toJSON = keys.toJSON.bind(keys);
keys.toJSON = (...args) => {
  counts.jwks += 1;
  return toJSON(...args);
};
server.service.on(Events.BeforeWellKnownOpenIdConfiguration, () => {
  counts.discovery += 1;
});

await server.start(0, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://127.0.0.1:${port}`;

const send = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
send({ event: 'ready', issuer: server.issuer.url, port, kid: currentKid });

async function handle(req) {
  switch (req.cmd) {
    case 'token': {
      const token = await server.issuer.buildToken({
        kid: currentKid,
        scopesOrTransform: (header, payload) => {
          Object.assign(payload, req.claims ?? {});
          for (const name of req.remove ?? []) delete payload[name];
          Object.assign(header, req.header ?? {});
        },
      });
      return { token };
    }
    case 'rotate':
      currentKid = (await server.issuer.keys.generate('RS256')).kid;
      return { kid: currentKid };
    case 'stats':
      return { ...counts };
    case 'stop':
      if (server.listening) await server.stop();
      return { stopped: true };
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === '') continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (err) {
    send({ error: `bad request line: ${err.message}` });
    continue;
  }
  try {
    send({ id: req.id, ...(await handle(req)) });
  } catch (err) {
    send({ id: req.id, error: String(err?.message ?? err) });
  }
}
if (server.listening) await server.stop();
process.exit(0);
