import type { Positions } from './types.js';
/** encodeCursor builds a v1 cursor from positions per channel. */
export declare function encodeCursor(positions: Positions): string;
/** decodeCursor reads a v1 cursor; it throws on anything malformed. */
export declare function decodeCursor(cursor: string): Positions;
