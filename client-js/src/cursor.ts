// Cursor v1 codec: base64url-no-padding of
//   0x01, uvarint N, then per channel sorted by name (byte order):
//   uvarint len(name), name, uvarint len(epoch), epoch, uvarint offset.
// Offsets may exceed 2^32, so varints use arithmetic, never 32-bit bit operations.

import type { Position, Positions } from './types.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function putVarint(out: number[], n: number): void {
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function putString(out: number[], s: string): void {
  putVarint(out, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 255);
}

/** encodeCursor builds a v1 cursor from positions per channel. */
export function encodeCursor(positions: Positions): string {
  const names = Object.keys(positions).sort();
  const b: number[] = [1];
  putVarint(b, names.length);
  for (let i = 0; i < names.length; i++) {
    const p = positions[names[i]];
    putString(b, names[i]);
    putString(b, p.epoch);
    putVarint(b, p.offset);
  }
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
    s += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63);
    if (i + 1 < b.length) s += B64.charAt((n >> 6) & 63);
    if (i + 2 < b.length) s += B64.charAt(n & 63);
  }
  return s;
}

function bad(): Error {
  return new Error('WaterSpout: malformed cursor');
}

/** decodeCursor reads a v1 cursor; it throws on anything malformed. */
export function decodeCursor(cursor: string): Positions {
  const b: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < cursor.length; i++) {
    const v = B64.indexOf(cursor.charAt(i));
    if (v < 0) throw bad();
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      b.push((acc >> bits) & 255);
    }
  }
  let at = 0;
  function varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (at >= b.length || mul > 1e16) throw bad();
      const c = b[at++];
      n += (c % 128) * mul;
      if (c < 128) return n;
      mul *= 128;
    }
  }
  function str(): string {
    const n = varint();
    if (at + n > b.length) throw bad();
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(b[at++]);
    return s;
  }
  if (b[at++] !== 1) throw bad();
  // No prototype: a channel named __proto__ is a key like any other.
  const out: Positions = Object.create(null);
  for (let n = varint(); n > 0; n--) {
    const name = str();
    const p: Position = { epoch: str(), offset: 0 };
    p.offset = varint();
    out[name] = p;
  }
  if (at !== b.length) throw bad();
  return out;
}
