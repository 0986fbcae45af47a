// Test-only operator OIDC provider for `keyferry login` (RFC 8628 device authorization grant).
//
// Wraps the third-party `oidc-provider` (a certified OpenID provider) on 127.0.0.1 with the
// device flow enabled and one public client, `keyferry-cli`. Its login and consent pages are
// replaced (as oidc-provider intends) by an interaction route that signs in the account named in
// the browser's `x-test-account` header; the `approve` command plays that browser: it opens the
// verification URI, submits the user-code forms and follows every redirect, like a person would.
//
// Driven over stdin/stdout with one JSON object per line (the process dies with its pipes):
// Start-up line (stdout): {"event":"ready","issuer":"http://127.0.0.1:PORT","client_id":"keyferry-cli"}
// Requests (stdin) and replies (stdout) carry the same "id":
//   {"id":1,"cmd":"approve","url":VERIFICATION_URI_COMPLETE,"account":"alice"}
//       -> {"id":1,"page":"Sign-in Success"}   the title of the last page the browser saw
//   {"id":2,"cmd":"approve","url":...,"account":"alice","deny":true}   the user refuses
// Accounts: alice (role admin), audrey (role auditor), mallory (no role).
import http from 'node:http';
import { createInterface } from 'node:readline';
import Provider from 'oidc-provider';

// stdout carries the protocol: oidc-provider's development notices go to stderr.
for (const level of ['log', 'info', 'warn']) console[level] = console.error;

const CLIENT_ID = 'keyferry-cli';
const ROLES = { alice: ['admin'], audrey: ['auditor'], mallory: [] };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_name: 'keyferry CLI',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
    response_types: [],
    redirect_uris: [],
  }],
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: false },
  },
  scopes: ['openid', 'keyferry'],
  claims: { openid: ['sub'], keyferry: ['keyferry_roles'] },
  // The broker reads the roles from the ID token (its audience is the CLI's client id).
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => (id in ROLES
    ? { accountId: id, claims: () => ({ sub: id, keyferry_roles: ROLES[id] }) }
    : undefined),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { DeviceCode: 300, IdToken: 3600, AccessToken: 3600, Grant: 3600, Interaction: 300, Session: 3600 },
});
const callback = provider.callback();

// The interaction route: log in the account the browser names, grant the scopes it asked for.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const account = req.headers['x-test-account'];
  const deny = req.headers['x-test-deny'] === 'true';
  let result;
  if (deny) {
    result = { error: 'access_denied', error_description: 'the operator refused' };
  } else if (details.prompt.name === 'login') {
    result = { login: { accountId: account } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  } else {
    callback(req, res);
  }
});

// A browser with a cookie jar that follows redirects by hand (fetch drops cookies on them).
async function approve({ url, account, deny }) {
  const jar = new Map();
  const headers = () => ({
    cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
    'x-test-account': account ?? '',
    'x-test-deny': deny ? 'true' : 'false',
  });
  const visit = async (target, form) => {
    let res = await fetch(target, form
      ? { method: 'POST', redirect: 'manual', headers: { ...headers(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) }
      : { redirect: 'manual', headers: headers() });
    for (;;) {
      for (const cookie of res.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) break;
      res = await fetch(new URL(location, target), { redirect: 'manual', headers: headers() });
    }
    return res.text();
  };
  const field = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
  // 1. The verification URI auto-posts the user code; 2. the confirmation page asks to continue.
  let html = await visit(url);
  html = await visit(`${issuer}/device`, { xsrf: field(html, 'xsrf'), user_code: field(html, 'user_code') });
  html = await visit(`${issuer}/device`, { xsrf: field(html, 'xsrf'), user_code: field(html, 'user_code'), confirm: 'yes' });
  return { page: /<title>([^<]*)<\/title>/.exec(html)?.[1] ?? html.slice(0, 200) };
}

const send = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
send({ event: 'ready', issuer, client_id: CLIENT_ID });

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  const req = JSON.parse(line);
  try {
    if (req.cmd !== 'approve') throw new Error(`unknown command ${req.cmd}`);
    send({ id: req.id, ...(await approve(req)) });
  } catch (err) {
    send({ id: req.id, error: String(err) });
  }
});
lines.on('close', () => process.exit(0));
