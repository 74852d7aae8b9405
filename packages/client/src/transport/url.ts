/**
 * @module transport/url
 * Where each transport reaches the proxy: `path` under `proxyUrl`, keeping any prefix the proxy
 * is mounted under (`https://host/tools/mcp-proxy` + `mcp` = `https://host/tools/mcp-proxy/mcp`).
 */

/** `${proxyUrl}/${path}` with the base's query and fragment dropped. */
export function proxyEndpoint(proxyUrl: string, path: string): URL {
  const base = new URL(proxyUrl);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(path, base);
}
