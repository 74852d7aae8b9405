/** Every client method through the real proxy to server-everything in sse mode. */
import { methodSuite } from './helpers/method-suite.ts';

methodSuite('sse');
