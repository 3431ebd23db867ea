import type { Transport, TransportEnv } from './transport.js';
import type { JsonpInjector } from './types.js';
/** scriptJsonp is the default JSONP injector: a <script> tag and a global callback. */
export declare const scriptJsonp: JsonpInjector;
/** jsonpTransport long-polls through script tags. */
export declare function jsonpTransport(env: TransportEnv): Transport;
