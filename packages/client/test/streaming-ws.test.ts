/** Notifications, progress, server requests and cancellation over the WebSocket /ws. */
import { streamingSuite } from './helpers/streaming-suite.ts';

streamingSuite('streamableHttp', 'ws');
streamingSuite('sse', 'ws');
