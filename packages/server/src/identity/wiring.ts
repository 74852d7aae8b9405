/**
 * @module identity/wiring
 * `buildIdentity(config, deps)` assembles who-the-caller-is for the app: static and minted
 * tokens, OIDC issuers, revocations heard across instances, what each credential holds open,
 * the audit trail and the one authenticator. app.ts wires it to the surfaces; a reload goes
 * through `reload`, the app's close through `close`.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import { storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import { openAuditSink } from './audit-sink.ts';
import { type AuditDestination, AuditTrail } from './audit-trail.ts';
import { Authenticator, type BearerVerifier } from './authenticator.ts';
import { CredentialHoldings } from './credential-holdings.ts';
import { FollowedPrincipal, type FollowPrincipal } from './followed-principal.ts';
import { MintedTokens } from './minted-tokens.ts';
import { boundedJsonFetcher } from './oidc/fetch-json.ts';
import { oidcIssuers, oidcTiming } from './oidc/settings.ts';
import { OidcVerifier } from './oidc/verifier.ts';
import { Revocations } from './revocations.ts';
import { SigningKeys } from './signing-keys.ts';
import { TokenVerifier } from './tokens.ts';

/** What the identity parts take from the app. */
export interface IdentityDeps {
  /** The shared store: revocations live under `revoked:`. */
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The names of the configured servers now (OIDC resource audiences name them). */
  readonly serverNames: () => readonly string[];
  /** The resource URLs a token may be issued for, from PUBLIC_URL and the server names. */
  readonly resourceUrls: (publicUrl: string, serverNames: readonly string[]) => string[];
  /** More bearer-token verifiers (OIDC), tried for JWTs the proxy did not mint. */
  readonly bearerVerifiers?: readonly BearerVerifier[] | undefined;
  /** How the OIDC verifier reads discovery documents and key sets (default: bounded `fetch`). */
  readonly oidcFetch?: ((url: string) => Promise<unknown>) | undefined;
  /** Where audit lines go instead of `AUDIT_LOG`'s stdout or file. */
  readonly auditDestination?: AuditDestination | undefined;
}

/** The identity parts of one app, and how a reload and the app's close reach them. */
export interface Identity {
  readonly verifier: TokenVerifier;
  readonly oidc: OidcVerifier;
  readonly signingKeys: SigningKeys;
  readonly minted: MintedTokens;
  readonly revocations: Revocations;
  readonly holdings: CredentialHoldings;
  readonly authenticator: Authenticator;
  /** The principal of a holding as the configuration in force sees it (open virtual sessions). */
  readonly follow: FollowPrincipal;
  /** The audit trail, when AUDIT_LOG (or a test's destination) asks for one. */
  readonly audit: AuditTrail | undefined;
  /** What the RFC 9728 metadata routes answer with. */
  readonly resourceMetadata: {
    readonly issuers: () => OidcVerifier['issuers'];
    readonly publicUrl: () => string | undefined;
  };
  /** PUBLIC_URL as the configuration in force has it. */
  publicUrl(): string | undefined;
  /** Whether an owner may keep what it opened: an OIDC subject while its issuer is configured. */
  ownerKnown(ownerId: string): boolean;
  /**
   * Subscribes to revocations from other instances, waiting at most 2 s: listening starts
   * before the first request where the store answers; a Redis that is down must not hold the
   * start-up (the subscription completes when Redis comes back).
   */
  listen(): Promise<void>;
  /** Applies a new configuration's keys, tokens, issuers and PUBLIC_URL (a reload). */
  reload(next: Config): void;
  /** Stops what runs in the background: holdings' timers, the revocation subscription. */
  close(): Promise<void>;
  /** Closes the audit sink the configuration opened (the app does it last, after the store). */
  closeAudit(): Promise<void>;
}

/** The signing-key settings of a configuration (a generated key stays in memory with STORE=memory). */
function signingKeySettings(config: Config) {
  return {
    signingKeys: config.signingKeys,
    dataDir: config.dataDir,
    ephemeral: storeKind(config) === 'memory',
  };
}

/** Builds the identity parts of an app from its configuration. */
export function buildIdentity(config: Config, deps: IdentityDeps): Identity {
  const { clock, logger, store } = deps;
  const now = () => clock.now();
  const verifier = new TokenVerifier(config.proxyTokens, config.tokens, config.adminToken);
  let publicUrl = config.publicUrl;
  const oidc = new OidcVerifier(oidcIssuers(config), oidcTiming(config), {
    fetchJson: deps.oidcFetch ?? boundedJsonFetcher(),
    clock,
    // Only under PUBLIC_URL: a Host-derived URL would let a token for another service pass here.
    resourceAudiences: () =>
      publicUrl === undefined ? [] : deps.resourceUrls(publicUrl, deps.serverNames()),
  });
  const resourceMetadata = { issuers: () => oidc.issuers, publicUrl: () => publicUrl };
  const auditSink =
    deps.auditDestination === undefined && config.auditLog !== 'off'
      ? openAuditSink(config.auditLog, (message) => logger.warn(message))
      : undefined;
  const auditDestination = deps.auditDestination ?? auditSink;
  const audit =
    auditDestination === undefined
      ? undefined
      : new AuditTrail({ destination: auditDestination, arguments: config.auditLogArguments, now });
  // Minted tokens (issue 17): keys (a generated one stays in memory with STORE=memory), the
  // revocations in the shared store, what each token holds open, and the one authenticator.
  const signingKeys = new SigningKeys(signingKeySettings(config), now);
  const minted = new MintedTokens(signingKeys, now, () => verifier.adminKeys());
  const revocations = new Revocations(namespaced(store, 'revoked:'), now);
  // What a minted token is judged against when verified (review10 MINT-2): kept here, replaced
  // by a reload before the tokens are verified again.
  let virtualServers = config.virtualServers;
  const holdings = new CredentialHoldings(clock, (id) => revocations.knownRevoked(id));
  const authenticator = new Authenticator({
    statics: verifier,
    minted,
    minters: {
      adminGrants: (minter) => verifier.adminGrants(minter),
      isVirtual: (name) => Object.hasOwn(virtualServers, name),
    },
    revocations,
    now,
    verifiers: [oidc, ...(deps.bearerVerifiers ?? [])],
  });
  // A revocation (here or announced by another instance) ends what the token holds: its sockets,
  // streams and the proxy-held sessions it opened.
  revocations.onRevoked((credentialId) => {
    authenticator.forgetCredential(credentialId);
    holdings.endCredential(credentialId);
  });
  // Revocations announced while this instance was not listening were never heard: every token
  // verified so far is checked against the store again, and what one holds ends if it was revoked.
  revocations.onResync(() => {
    authenticator.forgetVerified();
    void holdings.recheckAll().catch(() => {});
  });
  return {
    verifier,
    oidc,
    signingKeys,
    minted,
    revocations,
    holdings,
    authenticator,
    follow: (principal, recheck) => new FollowedPrincipal(principal, recheck, authenticator),
    audit,
    resourceMetadata,
    publicUrl: () => publicUrl,
    ownerKnown: (ownerId) =>
      ownerId.startsWith('oidc:') ? oidc.knowsOwner(ownerId) : authenticator.knows(ownerId),
    async listen() {
      const listening = revocations.start().then(
        () => true,
        (error: Error) => {
          logger.warn({ reason: error.message }, 'revocations from other instances are not heard');
          return true;
        },
      );
      let waited: NodeJS.Timeout | undefined;
      const subscribed = await Promise.race([
        listening,
        new Promise<false>((resolve) => {
          waited = setTimeout(() => resolve(false), 2_000);
        }),
      ]);
      clearTimeout(waited);
      if (!subscribed)
        logger.warn(
          'the shared store is not answering: revocations from other instances are heard once it does',
        );
    },
    reload(next) {
      signingKeys.replace(signingKeySettings(next));
      verifier.replace(next.proxyTokens, next.tokens, next.adminToken);
      oidc.replace(oidcIssuers(next), oidcTiming(next));
      publicUrl = next.publicUrl;
      virtualServers = next.virtualServers;
      // A dropped key must stop verifying the tokens it signed, cached or not, and end the sockets
      // and streams they hold; remembered OIDC principals carry the old claim mapping's grants:
      // all are judged again, under the new keys and issuers (so only once those are in place:
      // a recheck against the old ones would remember the old grants again).
      authenticator.forgetVerified();
      void holdings.recheckAll().catch(() => {});
    },
    async close() {
      holdings.close();
      await revocations.close();
    },
    async closeAudit() {
      await auditSink?.close();
    },
  };
}
