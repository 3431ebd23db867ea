// Types of the WaterSpout client. With the script-tag build, the same names live on the global WaterSpout.
export * from './types/index.js';
export as namespace WaterSpout;
