// Types of the WaterSpout client's script-tag builds: the global WaterSpout.
export * from './types/index.js';
export as namespace WaterSpout;
