// Types of the WaterSpout client's ES module, waterspout.mjs.
export * from './types/index.js';
