/** Notifications, progress, server requests and cancellation over Streamable HTTP (/mcp). */
import { streamingSuite } from './helpers/streaming-suite.ts';

streamingSuite('streamableHttp', 'streamable');
streamingSuite('sse', 'streamable');
