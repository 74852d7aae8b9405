/** This package's version (kept equal to package.json by a test); sent as `clientInfo.version`. */
export const VERSION = '0.1.0';
