/** Every client method through the proxy's WebSocket /ws, to both kinds of server-everything. */
import { methodSuite } from './helpers/method-suite.ts';

methodSuite('streamableHttp', 'ws');
methodSuite('sse', 'ws');
