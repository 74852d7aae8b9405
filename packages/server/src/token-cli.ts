/**
 * @module token-cli
 * `npm run token -- --subject alice --servers github --ttl 1h` (issue 17): mints a user token for
 * operators and scripts, from the same configuration (environment, `.env`, config file) and the
 * same signing keys as the proxy, so the proxy accepts it. Prints `{ token, expiresAt, id }` as
 * JSON on stdout; mistakes go to stderr with exit code 64 (usage) or 78 (configuration).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SYSTEM_CLOCK } from './clock.ts';
import { type Config, ConfigError, loadConfig } from './config/config.ts';
import { findProxyError } from './errors.ts';
import { CLI_MINTER, MintRecords } from './identity/mint-records.ts';
import { parseMintRequest } from './identity/mint-request.ts';
import { MintedTokens } from './identity/minted-tokens.ts';
import { SigningKeys } from './identity/signing-keys.ts';
import { openStore, storeKind } from './store/open-store.ts';
import { namespaced } from './store/store.ts';

const USAGE = `Usage: npm run -s token -- --subject <who> [--ttl 1h] [--servers a,b] [--urls p,q] [--tools x,y] [--origin https://app.example]

Mints a token the proxy accepts (X-Proxy-Token, Authorization: Bearer, or the /ws subprotocol),
limited with --servers to configured servers or virtual servers, with --urls to raw URLs those
patterns match (https://*.example.com/mcp), with --tools to those tools,
signed with the proxy's key (SIGNING_KEYS, or the one kept in DATA_DIR). Prints JSON:
{ "token", "expiresAt", "id" }. --ttl takes seconds or 30s, 15m, 1h, 1d (at most 24 h; default 1h).
`;

/** `90`, `90s`, `15m`, `1h`, `1d` → seconds; undefined when it reads as none of them. */
export function parseTtl(text: string): number | undefined {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { '': 1, s: 1, m: 60, h: 3_600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        subject: { type: 'string' },
        ttl: { type: 'string' },
        servers: { type: 'string' },
        urls: { type: 'string' },
        tools: { type: 'string' },
        origin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`, 64);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const list = (value: unknown) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== '')
      : undefined;
  const ttlSeconds = typeof values.ttl === 'string' ? parseTtl(values.ttl) : undefined;
  if (values.ttl !== undefined && ttlSeconds === undefined)
    fail(`--ttl: "${values.ttl}" is not a duration\n\n${USAGE}`, 64);

  let config: Config;
  try {
    config = loadConfig({ env: process.env, dotenvPath: resolve(process.env.DOTENV_PATH ?? '.env') });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 78);
    throw error;
  }
  if (config.signingKeys.length === 0 && storeKind(config) === 'memory') {
    fail(
      'With STORE=memory the proxy keeps its generated key in memory: set SIGNING_KEYS so both use the same key.',
      78,
    );
  }
  let keys: SigningKeys;
  try {
    keys = new SigningKeys({ signingKeys: config.signingKeys, dataDir: config.dataDir });
  } catch (error) {
    fail(`Invalid configuration: ${(error as Error).message}`, 78);
  }
  try {
    const request = parseMintRequest(
      {
        subject: values.subject,
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
        ...(values.servers === undefined ? {} : { servers: list(values.servers) }),
        ...(values.urls === undefined ? {} : { urls: list(values.urls) }),
        ...(values.tools === undefined ? {} : { tools: list(values.tools) }),
        ...(values.origin === undefined ? {} : { origin: values.origin }),
      },
      { configured: config },
    );
    const minted = await new MintedTokens(keys).mint(request, CLI_MINTER);
    await recordMinted(config, minted.id, Date.parse(minted.expiresAt));
    process.stdout.write(`${JSON.stringify(minted)}\n`);
  } catch (error) {
    const refused = findProxyError(error);
    if (refused) fail(`${refused.message}\n\n${USAGE}`, 64);
    throw error;
  }
}

/**
 * Records the token in the proxy's store, so `DELETE /auth/tokens/{id}` (by an unrestricted
 * admin) can revoke it. A token that cannot be recorded is not printed: it could not be revoked.
 */
async function recordMinted(config: Config, id: string, until: number): Promise<void> {
  if (storeKind(config) === 'memory') {
    process.stderr.write(
      'STORE=memory: the proxy cannot know of this token, so it cannot be revoked by id.\n',
    );
    return;
  }
  let opened: Awaited<ReturnType<typeof openStore>> | undefined;
  try {
    opened = await openStore(config, { clock: SYSTEM_CLOCK, onError: () => {} });
    await new MintRecords(namespaced(opened.store, 'minted:')).record(id, CLI_MINTER, until);
  } catch (error) {
    fail(
      `Cannot record the token in the store (${storeKind(config)}), so it is not printed: ${(error as Error).message}`,
      69,
    );
  } finally {
    await opened?.store.close();
  }
}

await main();
