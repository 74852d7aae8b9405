/** Every client method through the real proxy to server-everything in (legacy) sse mode. */
import { methodSuite } from './helpers/method-suite.ts';

methodSuite('sse', 'http');
methodSuite('sse', 'streamable');
