// A real OpenID Connect provider for the console's single sign-on tests: panva/node-oidc-provider with its
// development sign-in pages (any login and password; the login becomes the subject). Each person's address is
// the login, or <login>@example.test when it has no "@"; verified, except for logins starting with "unverified-".
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      email: id.includes('@') ? id : `${id}@example.test`,
      email_verified: !id.startsWith('unverified-'),
    }),
  }),
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening on ${provider.issuer}`));
