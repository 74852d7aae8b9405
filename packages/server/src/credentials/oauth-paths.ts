/**
 * @module credentials/oauth-paths
 * The broker's public paths under PUBLIC_URL, read by the broker (the URLs it hands out) and by
 * the routes that answer them (surfaces/oauth/routes.ts), which register them before the broker
 * is loaded (issue #16: start-up memory).
 */

/** The base of the Client ID Metadata Documents under PUBLIC_URL (one per issuer, credentials/registration.ts). */
export const CLIENT_METADATA_BASE = '/oauth/client-metadata';
/** The base of the callback paths under PUBLIC_URL: `/oauth/callback/{issuer-key}`. */
export const CALLBACK_BASE = '/oauth/callback';
/** Where the identity provider sends the user back: `PUBLIC_URL/oauth/login/{issuer-key}`. */
export const LOGIN_BASE = '/oauth/login';
