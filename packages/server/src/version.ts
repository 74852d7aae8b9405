/**
 * @module version
 * The server's name and version, read once from its package.json.
 */
import pkg from '../package.json' with { type: 'json' };

/** Product name reported by GET / and the MCP endpoints. */
export const PRODUCT_NAME = 'mcp-proxy';

/** Server version from package.json. */
export const VERSION: string = pkg.version;
