/** Every client method through the real proxy to server-everything in streamableHttp mode. */
import { methodSuite } from './helpers/method-suite.ts';

methodSuite('streamableHttp', 'http');
methodSuite('streamableHttp', 'streamable');
